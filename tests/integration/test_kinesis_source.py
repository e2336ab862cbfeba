"""dredge-kinesis against kinesalite: parallel shards, exactly-once, resharding, faults, KPL.
Exactly once across a driver killed between a batch's read and its commit, restarted with
another admission limit: tests/integration/test_enrich_crash.py (the whole job's driver)."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import kinesis_helpers as kh
import pytest
import urllib3

from spark_jobs.sources.kinesis import kpl, read_kinesis

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]


@pytest.fixture(autouse=True)
def _creds() -> None:
    kh.set_dummy_credentials()


@pytest.fixture()
def kinesis() -> Iterator[Any]:
    client = kh.client()
    yield client
    kh.delete_created(client)


def _rows(spark: Any, table: str) -> list[tuple[str, str, str]]:
    rows = spark.sql(f"select shard_id, sequence_number, data from {table}").collect()
    return [(r.shard_id, r.sequence_number, bytes(r.data).decode()) for r in rows]


def _expected(kinesis: Any, stream: str, payloads: list[bytes], seqs: list[str]) -> set:
    by_seq = {}
    for shard in kinesis.list_shards(StreamName=stream)["Shards"]:
        it = kinesis.get_shard_iterator(
            StreamName=stream, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        for rec in kinesis.get_records(ShardIterator=it, Limit=10000)["Records"]:
            by_seq[rec["SequenceNumber"]] = shard["ShardId"]
    return {(by_seq[s], s, p.decode()) for s, p in zip(seqs, payloads, strict=True)}


def _memory_query(df: Any, name: str, checkpoint: str, **trigger: Any) -> Any:
    writer = df.writeStream.format("memory").queryName(name)
    return writer.option("checkpointLocation", checkpoint).trigger(**trigger).start()


def test_four_shards_in_parallel_exact_records_then_nothing_new(
    spark: Any, kinesis: Any, tmp_path: Path
) -> None:
    stream = kh.create_stream(kinesis, 4)
    payloads = [f"rec-{i}".encode() for i in range(40)]
    seqs = kh.put(kinesis, stream, payloads)
    opts = kh.options(stream, str(tmp_path / "meta"))
    table = str(tmp_path / "delta")

    def run() -> Any:
        df = read_kinesis(spark, opts)
        writer = df.writeStream.format("delta").option("checkpointLocation", str(tmp_path / "cp"))
        query = writer.trigger(availableNow=True).start(table)
        query.awaitTermination(180)
        assert query.exception() is None
        return query

    first = run()
    rows = [
        (r.shard_id, r.sequence_number, bytes(r.data).decode())
        for r in spark.read.format("delta").load(table).collect()
    ]
    assert len(rows) == 40
    assert set(rows) == _expected(kinesis, stream, payloads, seqs)
    batch = next(p for p in first.recentProgress if p["numInputRows"] > 0)
    end = json.loads(batch["sources"][0]["endOffset"])
    assert sum(s["read"] for s in end["shards"].values()) == 4  # one input partition per shard
    assert "millisBehindLatest" in json.loads(batch["sources"][0]["latestOffset"])
    second = run()
    assert sum(p["numInputRows"] for p in second.recentProgress) == 0
    assert spark.read.format("delta").load(table).count() == 40


def test_admission_control_caps_rows_per_batch(spark: Any, kinesis: Any, tmp_path: Path) -> None:
    stream = kh.create_stream(kinesis, 2)
    payloads = [f"a-{i}".encode() for i in range(23)]
    seqs = kh.put(kinesis, stream, payloads)
    df = read_kinesis(spark, kh.options(stream, str(tmp_path / "m"), maxRecordsPerBatch="6"))
    name = f"adm_{uuid.uuid4().hex[:8]}"
    query = _memory_query(df, name, str(tmp_path / "cp"), availableNow=True)
    query.awaitTermination(180)
    counts = [p["numInputRows"] for p in query.recentProgress]
    assert max(counts) <= 6 and sum(counts) == 23
    rows = _rows(spark, name)
    assert len(rows) == 23 and set(rows) == _expected(kinesis, stream, payloads, seqs)


def test_at_timestamp_reads_only_later_records(spark: Any, kinesis: Any, tmp_path: Path) -> None:
    stream = kh.create_stream(kinesis, 1)
    kh.put(kinesis, stream, [f"old-{i}".encode() for i in range(5)])
    # AT_TIMESTAMP is millisecond-grained and inclusive: keep the cut out of old-4's millisecond.
    settled = datetime.now(tz=UTC).timestamp()
    kh.wait_for(lambda: datetime.now(tz=UTC).timestamp() - settled > 0.05)
    cut = datetime.now(tz=UTC)
    kh.wait_for(lambda: datetime.now(tz=UTC).timestamp() - cut.timestamp() > 0.05)
    later = [f"new-{i}".encode() for i in range(5)]
    seqs = kh.put(kinesis, stream, later)
    opts = kh.options(
        stream, str(tmp_path / "m"), startingPosition=f"AT_TIMESTAMP:{cut.isoformat()}"
    )
    name = f"ts_{uuid.uuid4().hex[:8]}"
    query = _memory_query(read_kinesis(spark, opts), name, str(tmp_path / "cp"), availableNow=True)
    query.awaitTermination(120)
    assert set(_rows(spark, name)) == _expected(kinesis, stream, later, seqs)


def test_split_and_merge_while_the_query_runs(spark: Any, kinesis: Any, tmp_path: Path) -> None:
    stream = kh.create_stream(kinesis, 2)
    opts = kh.options(stream, str(tmp_path / "m"))
    name = f"reshard_{uuid.uuid4().hex[:8]}"
    query = _memory_query(
        read_kinesis(spark, opts), name, str(tmp_path / "cp"), processingTime="300 milliseconds"
    )
    payloads: list[bytes] = []
    seqs: list[str] = []
    try:

        def produce(tag: str) -> None:
            batch = [f"{tag}-{i}".encode() for i in range(12)]
            seqs.extend(kh.put(kinesis, stream, batch))
            payloads.extend(batch)

            def caught_up() -> bool:
                if query.exception() is not None:
                    raise AssertionError(f"query failed: {query.exception()}")
                return len(_rows(spark, name)) >= len(payloads)

            kh.wait_for(caught_up, timeout=120, every=0.3)

        produce("before")
        shard0 = "shardId-000000000000"
        kinesis.split_shard(StreamName=stream, ShardToSplit=shard0, NewStartingHashKey=str(2**126))
        kh.wait_active(kinesis, stream)
        produce("split")
        kids = sorted(s for s in kh.hash_keys(kinesis, stream) if s != "shardId-000000000001")
        kinesis.merge_shards(StreamName=stream, ShardToMerge=kids[0], AdjacentShardToMerge=kids[1])
        kh.wait_active(kinesis, stream)
        produce("merge")
        assert query.exception() is None
    finally:
        query.stop()
    rows = _rows(spark, name)
    assert len(rows) == 36  # nothing duplicated
    assert set(rows) == _expected(kinesis, stream, payloads, seqs)  # nothing lost


def test_kpl_aggregated_records_are_split_with_sub_ids(
    spark: Any, kinesis: Any, tmp_path: Path
) -> None:
    stream = kh.create_stream(kinesis, 1)
    subs = [kpl.SubRecord(f"user-{i % 2}", f"sub-{i}".encode()) for i in range(3)]
    agg_seq = kinesis.put_record(StreamName=stream, Data=kpl.encode(subs), PartitionKey="agg")[
        "SequenceNumber"
    ]
    plain_seq = kh.put(kinesis, stream, [b"plain"], spread=False)[0]
    name = f"kpl_{uuid.uuid4().hex[:8]}"
    opts = kh.options(stream, str(tmp_path / "m"))
    query = _memory_query(read_kinesis(spark, opts), name, str(tmp_path / "cp"), availableNow=True)
    query.awaitTermination(120)
    rows = spark.sql(f"select sequence_number, partition_key, data from {name}").collect()
    got = sorted((r.sequence_number, r.partition_key, bytes(r.data)) for r in rows)
    assert got == sorted(
        [
            (f"{agg_seq}:000000", "user-0", b"sub-0"),
            (f"{agg_seq}:000001", "user-1", b"sub-1"),
            (f"{agg_seq}:000002", "user-0", b"sub-2"),
            (plain_seq, "pk-0", b"plain"),
        ]
    )


class _FaultProxy(BaseHTTPRequestHandler):
    """Forwards to kinesalite; every 3rd GetRecords is throttled, every 5th iterator expired."""

    calls = 0
    injected: dict[str, int] = {"throttled": 0, "expired": 0}
    lock = threading.Lock()
    pool = urllib3.PoolManager()

    def log_message(self, *args: Any) -> None:
        return

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        fault = None
        if self.headers.get("X-Amz-Target", "").endswith(".GetRecords"):
            with self.lock:
                type(self).calls += 1
                n = type(self).calls
            if n % 3 == 0:
                fault = ("ProvisionedThroughputExceededException", "throttled")
            elif n % 5 == 0:
                fault = ("ExpiredIteratorException", "expired")
        if fault:
            with self.lock:
                self.injected[fault[1]] += 1
            payload = json.dumps({"__type": fault[0], "message": "injected"}).encode()
            self.send_response(400)
            self.send_header("Content-Type", "application/x-amz-json-1.1")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
            return
        headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
        resp = self.pool.request("POST", kh.ENDPOINT + self.path, body=body, headers=headers)
        self.send_response(resp.status)
        for key in ("Content-Type", "x-amzn-RequestId"):
            if resp.headers.get(key):
                self.send_header(key, resp.headers[key])
        self.send_header("Content-Length", str(len(resp.data)))
        self.end_headers()
        self.wfile.write(resp.data)


@pytest.fixture()
def fault_proxy() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FaultProxy)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_throttling_and_expired_iterators_do_not_fail_the_query(
    spark: Any, kinesis: Any, tmp_path: Path, fault_proxy: str
) -> None:
    stream = kh.create_stream(kinesis, 2)
    payloads = [f"t-{i}".encode() for i in range(20)]
    seqs = kh.put(kinesis, stream, payloads)
    opts = kh.options(stream, str(tmp_path / "m"), endpointUrl=fault_proxy, maxRecordsPerBatch="3")
    name = f"faults_{uuid.uuid4().hex[:8]}"
    query = _memory_query(read_kinesis(spark, opts), name, str(tmp_path / "cp"), availableNow=True)
    query.awaitTermination(200)
    assert query.exception() is None
    assert _FaultProxy.injected["throttled"] > 0 and _FaultProxy.injected["expired"] > 0
    rows = _rows(spark, name)
    assert len(rows) == 20 and set(rows) == _expected(kinesis, stream, payloads, seqs)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"streamName": "dredge-missing-" + uuid.uuid4().hex[:6]}, "not found"),
        ({"endpointUrl": "http://127.0.0.1:9"}, "cannot reach Kinesis"),
    ],
)
def test_bad_stream_or_endpoint_fails_at_start_with_a_clear_message(
    spark: Any, tmp_path: Path, overrides: dict[str, str], message: str
) -> None:
    opts = {**kh.options("unused", str(tmp_path / "m")), **overrides}
    name = f"bad_{uuid.uuid4().hex[:8]}"
    query = _memory_query(read_kinesis(spark, opts), name, str(tmp_path / "cp"), availableNow=True)
    with pytest.raises(Exception, match=message):
        query.awaitTermination(120)


def test_credentials_in_options_are_refused(spark: Any, tmp_path: Path) -> None:
    opts = {**kh.options("s", str(tmp_path / "m")), "awsSecretKey": "x"}
    with pytest.raises(Exception, match="credentials are not accepted"):
        read_kinesis(spark, opts)
