"""Rows/s drained from Kinesis (kinesalite): plain boto3 vs dredge-kinesis vs a naive design.

The naive design (kept here only, never in the product) scans every shard on the driver in
``latestOffset`` to find each shard's last sequence number, then the executors read the same
records again. Run: ``python -m bench.kinesis [--records N]``; writes bench/results/kinesis.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pyarrow as pa
from pyspark.sql.datasource import DataSource, DataSourceStreamReader, InputPartition

from spark_jobs.config import SparkConfig
from spark_jobs.session import build_session
from spark_jobs.sources.kinesis import read_kinesis
from spark_jobs.sources.kinesis.client import shard_iterator
from spark_jobs.sources.kinesis.datasource import SCHEMA_DDL
from spark_jobs.sources.kinesis.reading import to_record_batch

ENDPOINT = os.environ.get("DREDGE_KINESIS_ENDPOINT", "http://127.0.0.1:4567")
REGION = "us-east-1"
RESULTS = Path(__file__).resolve().parent / "results" / "kinesis.json"


def _client() -> Any:
    return boto3.client("kinesis", endpoint_url=ENDPOINT, region_name=REGION)


def _drain(client: Any, stream: str, shard: str, start: str, stop_at: str | None) -> Iterator[list]:
    """Pages of a shard from ``start`` to the tip (or through ``stop_at``)."""
    it = shard_iterator(client, stream, shard, start)
    while it:
        resp = client.get_records(ShardIterator=it, Limit=10000)
        recs = resp["Records"]
        if stop_at is not None:
            recs = [r for r in recs if int(r["SequenceNumber"]) <= int(stop_at)]
        if recs:
            yield recs
        if stop_at is not None and recs and recs[-1]["SequenceNumber"] == stop_at:
            return
        if not resp["Records"] and not resp.get("MillisBehindLatest"):
            return
        it = resp.get("NextShardIterator")


class _NaivePartition(InputPartition):
    def __init__(self, shard: str, start: str, end: str) -> None:
        self.shard, self.start, self.end = shard, start, end


class _NaiveReader(DataSourceStreamReader):
    def __init__(self, stream: str) -> None:
        self.stream = stream

    def initialOffset(self) -> dict:  # noqa: N802 - API name
        shards = _client().list_shards(StreamName=self.stream)["Shards"]
        return {s["ShardId"]: "TRIM_HORIZON" for s in shards}

    def latestOffset(self, start: dict, limit: Any) -> dict:  # noqa: N802 - API name
        client, end = _client(), dict(start)
        for shard, pos in start.items():
            for page in _drain(client, self.stream, shard, pos, None):  # the driver scan
                end[shard] = "AFTER:" + page[-1]["SequenceNumber"]
        return end

    def partitions(self, start: dict, end: dict) -> list[InputPartition]:
        return [_NaivePartition(s, start[s], end[s]) for s in end if end[s] != start[s]]

    def read(self, partition: InputPartition) -> Iterator[pa.RecordBatch]:
        assert isinstance(partition, _NaivePartition)
        stop = partition.end.split(":", 1)[1]
        for page in _drain(_client(), self.stream, partition.shard, partition.start, stop):
            yield to_record_batch(self.stream, partition.shard, page)


class NaiveKinesis(DataSource):
    @classmethod
    def name(cls) -> str:
        return "bench-naive-kinesis"

    def schema(self) -> str:
        return SCHEMA_DDL

    def streamReader(self, schema: Any) -> DataSourceStreamReader:  # noqa: N802 - API name
        return _NaiveReader(self.options["streamname"])


def _fill(records: int, shards: int) -> str:
    client = _client()
    stream = f"dredge-bench-{uuid.uuid4().hex[:8]}"
    client.create_stream(StreamName=stream, ShardCount=shards)
    deadline = time.monotonic() + 60
    while (
        client.describe_stream_summary(StreamName=stream)["StreamDescriptionSummary"][
            "StreamStatus"
        ]
        != "ACTIVE"
        and time.monotonic() < deadline
    ):
        time.sleep(0.1)
    payload = b'{"message": "' + b"x" * 200 + b'"}'
    for i in range(0, records, 500):
        entries = [
            {"Data": payload, "PartitionKey": f"k{j}"} for j in range(i, min(records, i + 500))
        ]
        client.put_records(StreamName=stream, Records=entries)
    return stream


def _boto3_drain(stream: str) -> tuple[int, float]:
    client, t0, n = _client(), time.perf_counter(), 0
    for shard in client.list_shards(StreamName=stream)["Shards"]:
        for page in _drain(client, stream, shard["ShardId"], "TRIM_HORIZON", None):
            n += len(page)
    return n, time.perf_counter() - t0


def _spark_drain(spark: Any, df: Any, checkpoint: str) -> dict[str, Any]:
    t0 = time.perf_counter()
    query = (
        df.writeStream.format("noop")
        .option("checkpointLocation", checkpoint)
        .trigger(availableNow=True)
        .start()
    )
    query.awaitTermination()
    seconds = time.perf_counter() - t0
    progress = [p for p in query.recentProgress if p["numInputRows"] > 0]
    rows = sum(p["numInputRows"] for p in progress)
    offsets_ms = sum(p["durationMs"].get("latestOffset", 0) for p in progress)
    total_ms = sum(p["durationMs"].get("triggerExecution", 0) for p in progress)
    return {
        "rows": rows,
        "seconds": round(seconds, 3),
        "rows_per_s": round(rows / seconds, 1),
        "driver_latest_offset_share": round(offsets_ms / total_ms, 3) if total_ms else None,
    }


def run(records: int, shards: int) -> dict[str, Any]:
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "test")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "test")
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    stream = _fill(records, shards)
    n, secs = _boto3_drain(stream)
    spark = build_session(SparkConfig(master="local[2]", shuffle_partitions=2))
    spark.dataSource.register(NaiveKinesis)
    with tempfile.TemporaryDirectory() as tmp:
        opts = {
            "streamName": stream,
            "region": REGION,
            "endpointUrl": ENDPOINT,
            "metadataPath": f"{tmp}/meta",
        }
        naive_df = spark.readStream.format("bench-naive-kinesis").option("streamName", stream)
        runs: dict[str, list[dict[str, Any]]] = {"ours": [], "naive": []}
        for i in range(2):  # interleaved, best of two: the first run also warms the workers
            ours_df = read_kinesis(spark, {**opts, "metadataPath": f"{tmp}/meta{i}"})
            runs["naive"].append(_spark_drain(spark, naive_df.load(), f"{tmp}/naive{i}"))
            runs["ours"].append(_spark_drain(spark, ours_df, f"{tmp}/ours{i}"))
        ours = max(runs["ours"], key=lambda r: r["rows_per_s"])
        naive = max(runs["naive"], key=lambda r: r["rows_per_s"])
    _client().delete_stream(StreamName=stream)
    return {
        "records": records,
        "shards": shards,
        "boto3": {"rows": n, "seconds": round(secs, 3), "rows_per_s": round(n / secs, 1)},
        "dredge_kinesis": ours,
        "naive_driver_scan": naive,
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args(argv)
    result = run(args.records, args.shards)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"kinesis: {args.records} records/{args.shards} shards: boto3 "
        f"{result['boto3']['rows_per_s']} rows/s, dredge-kinesis "
        f"{result['dredge_kinesis']['rows_per_s']} rows/s, naive driver-scan "
        f"{result['naive_driver_scan']['rows_per_s']} rows/s "
        f"(driver latestOffset share {result['dredge_kinesis']['driver_latest_offset_share']} vs "
        f"{result['naive_driver_scan']['driver_latest_offset_share']})"
    )
    return result


if __name__ == "__main__":
    main()
