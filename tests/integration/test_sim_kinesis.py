"""The simulator's envelopes go into a real (kinesalite) stream and come back intact."""

from __future__ import annotations

import gzip
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from spark_jobs.sim.envelopes import decode
from spark_jobs.sim.kinesis import KinesisSink, ensure_stream, kinesis_client
from spark_jobs.sim.runner import SimConfig, run

ENDPOINT = "http://127.0.0.1:4567"
pytestmark = pytest.mark.integration


@pytest.fixture()
def client(monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    return kinesis_client("us-east-1", ENDPOINT)


def _read_all(client: Any, stream: str, expected: int, timeout_s: float = 60.0) -> list[bytes]:
    """Every record of every shard, polling until ``expected`` arrived or the deadline."""
    shards = client.list_shards(StreamName=stream)["Shards"]
    iterators = {
        s["ShardId"]: client.get_shard_iterator(
            StreamName=stream, ShardId=s["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        for s in shards
    }
    out: list[bytes] = []
    deadline = time.monotonic() + timeout_s
    while len(out) < expected and time.monotonic() < deadline:
        for shard, it in list(iterators.items()):
            resp = client.get_records(ShardIterator=it, Limit=1000)
            out.extend(r["Data"] for r in resp["Records"])
            iterators[shard] = resp["NextShardIterator"]
    return out


def test_put_and_read_back_the_same_envelopes(client: Any, tmp_path: Path) -> None:
    stream = f"dredge-sim-test-{uuid.uuid4().hex[:10]}"
    ensure_stream(client, stream, shards=2, timeout_s=30)
    ensure_stream(client, stream, shards=2, timeout_s=30)  # idempotent when it exists
    try:
        sink = KinesisSink(client, stream, shards=2, throttle=True)
        cfg = SimConfig(out=tmp_path, minutes=2, apps=6, seed=5, flows_per_minute=1500)
        summary = run(cfg, sink)
        assert sink.stats.records == summary.envelopes > 10
        assert sink.stats.calls >= 1
        got = _read_all(client, stream, summary.envelopes)
        assert len(got) == summary.envelopes
        messages = [
            ev["message"]
            for data in got
            if (body := decode(data))["messageType"] == "DATA_MESSAGE"
            for ev in body["logEvents"]  # type: ignore[attr-defined]
        ]
        file_lines = [
            line
            for p in tmp_path.glob("flowlogs/**/*.log.gz")
            for line in gzip.decompress(p.read_bytes()).decode().splitlines()[1:]
        ]
        assert Counter(messages) == Counter(file_lines)
    finally:
        client.delete_stream(StreamName=stream)
