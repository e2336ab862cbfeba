"""The executor's shard read loop (``ShardReader.pages``) against a scripted GetRecords."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from spark_jobs.sources.kinesis.client import Pacer
from spark_jobs.sources.kinesis.reading import ReadSpec, ShardReader

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _rec(seq: int) -> dict[str, Any]:
    return {"SequenceNumber": str(seq), "Data": b"x", "PartitionKey": "k",
            "ApproximateArrivalTimestamp": T0}  # fmt: skip


class _Shard:
    """GetRecords pages in order (each a response dict); counts the calls."""

    def __init__(self, pages: list[dict[str, Any]]) -> None:
        self.pages, self.calls = pages, 0

    def get_shard_iterator(self, **_: Any) -> dict[str, str]:
        return {"ShardIterator": "it-0"}

    def get_records(self, **_: Any) -> dict[str, Any]:
        self.calls += 1
        return self.pages[min(self.calls, len(self.pages)) - 1]


def _read(shard: _Shard, **spec: Any) -> tuple[list[str], Any]:
    reader = ShardReader(shard, ReadSpec("s", "shard-0", "TRIM_HORIZON", **spec), Pacer(0.0))
    seqs = [r["SequenceNumber"] for page in reader.pages() for r in page]
    return seqs, reader.outcome


def test_a_page_that_reaches_the_tip_ends_the_read() -> None:
    shard = _Shard([
        {"Records": [_rec(1), _rec(2)], "NextShardIterator": "it-1", "MillisBehindLatest": 0},
        {"Records": [_rec(3)], "NextShardIterator": "it-2", "MillisBehindLatest": 0},
    ])  # fmt: skip
    seqs, outcome = _read(shard)
    assert seqs == ["1", "2"] and shard.calls == 1  # no polling past the tip
    assert outcome.last == "2" and outcome.count == 2
    assert not outcome.ended and not outcome.more  # the driver probes the shard next batch


def test_a_page_behind_the_tip_reads_on() -> None:
    shard = _Shard([
        {"Records": [_rec(1)], "NextShardIterator": "it-1", "MillisBehindLatest": 5000},
        {"Records": [_rec(2)], "NextShardIterator": "it-2", "MillisBehindLatest": 0},
    ])  # fmt: skip
    seqs, outcome = _read(shard)
    assert seqs == ["1", "2"] and shard.calls == 2
    assert outcome.last == "2"


def test_empty_pages_at_the_tip_still_need_two_in_a_row() -> None:
    # an empty first page says nothing about the shard's end: read until two empty pages
    shard = _Shard([
        {"Records": [], "NextShardIterator": "it-1", "MillisBehindLatest": 0},
        {"Records": [], "NextShardIterator": "it-2", "MillisBehindLatest": 0},
        {"Records": [_rec(9)], "NextShardIterator": "it-3", "MillisBehindLatest": 0},
    ])  # fmt: skip
    seqs, outcome = _read(shard)
    assert seqs == [] and shard.calls == 2 and outcome.last is None


def test_a_closed_shard_is_seen_to_end() -> None:
    shard = _Shard([{"Records": [_rec(1)], "MillisBehindLatest": 0}])  # no next iterator
    seqs, outcome = _read(shard)
    assert seqs == ["1"] and outcome.ended


def test_a_replay_reads_to_its_target_past_the_tip() -> None:
    shard = _Shard([
        {"Records": [_rec(1)], "NextShardIterator": "it-1", "MillisBehindLatest": 0},
        {"Records": [_rec(2), _rec(3)], "NextShardIterator": "it-2", "MillisBehindLatest": 0},
    ])  # fmt: skip
    seqs, outcome = _read(shard, target="2", is_replay=True)
    assert seqs == ["1", "2"] and shard.calls == 2  # exactly through the recorded end
    assert outcome.last == "2"
