"""KinesisSink batching and retries against a fake client (no network)."""

from __future__ import annotations

from typing import Any

import pytest

from spark_jobs.sim.envelopes import Envelope
from spark_jobs.sim.kinesis import MAX_BATCH_BYTES, MAX_BATCH_RECORDS, KinesisSink


class FakeKinesis:
    """Fails every third entry of the first call; records what it accepted."""

    def __init__(self) -> None:
        self.calls: list[list[dict[str, Any]]] = []
        self.accepted: list[bytes] = []

    def put_records(self, StreamName: str, Records: list[dict[str, Any]]) -> dict[str, Any]:  # noqa: N803
        self.calls.append(Records)
        results = []
        for i, r in enumerate(Records):
            if len(self.calls) == 1 and i % 3 == 0:
                results.append({"ErrorCode": "ProvisionedThroughputExceededException"})
            else:
                results.append({"SequenceNumber": str(len(self.accepted))})
                self.accepted.append(r["Data"])
        return {"FailedRecordCount": sum("ErrorCode" in r for r in results), "Records": results}


def _envs(n: int, size: int) -> list[Envelope]:
    return [Envelope(i, i, f"eni-{i % 7}", bytes([i % 251]) * size, 1) for i in range(n)]


def test_batches_respect_limits_and_failed_entries_are_retried(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("spark_jobs.sim.kinesis.time.sleep", lambda _s: None)
    fake = FakeKinesis()
    sink = KinesisSink(fake, "s", shards=1, throttle=False)
    envs = _envs(1200, 100) + _envs(30, 400_000)
    sink.put(envs)
    sink.close()
    assert sorted(fake.accepted) == sorted(e.data for e in envs)
    assert sink.stats.records == len(envs)
    assert sink.stats.retried_entries > 0
    for call in fake.calls:
        assert len(call) <= MAX_BATCH_RECORDS
        assert sum(len(r["Data"]) + len(r["PartitionKey"]) for r in call) <= MAX_BATCH_BYTES


def test_oversized_envelope_is_refused() -> None:
    sink = KinesisSink(FakeKinesis(), "s", shards=1, throttle=False)
    with pytest.raises(ValueError, match="record limit"):
        sink.put(_envs(1, 1024 * 1024 + 1))
