"""Offset planning of the Kinesis source (pure logic, no Spark, no network)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from spark_jobs.sources.kinesis import offsets as ofs
from spark_jobs.sources.kinesis.client import shard_iterator
from spark_jobs.sources.kinesis.meta import MetaStore
from spark_jobs.sources.kinesis.offsets import Offset, Outcome, ShardInfo, ShardState
from spark_jobs.sources.kinesis.options import KinesisOptionError, KinesisOptions

BIG_SEQ = "49680573962909090495911772200723128684142398556182937602"  # > 2**64


def test_offset_json_round_trip_keeps_sequence_numbers_as_strings() -> None:
    off = Offset("000000000003-abcd", "TRIM_HORIZON", 5, {"s/a": ShardState(f"AFTER:{BIG_SEQ}")})
    text = json.dumps(off.to_json())
    back = Offset.from_json(json.loads(text))
    assert back == off
    assert f'"AFTER:{BIG_SEQ}"' in text
    assert back.counter == 3


def test_unknown_offset_version_fails() -> None:
    with pytest.raises(ofs.OffsetError):
        Offset.from_json({"v": 99, "plan": "x", "start": "", "until": None, "shards": {}})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("trim_horizon", "TRIM_HORIZON"),
        ("LATEST", "AT_TIMESTAMP:1000"),
        ("AT_TIMESTAMP:2024-01-02T03:04:05Z", "AT_TIMESTAMP:1704164645000"),
        ("at_timestamp:2024-01-02T04:04:05.5+01:00", "AT_TIMESTAMP:1704164645500"),
    ],
)
def test_starting_positions(text: str, expected: str) -> None:
    assert ofs.parse_starting_position(text, now_ms=1000) == expected


@pytest.mark.parametrize("text", ["EARLIER", "AT_TIMESTAMP:yesterday", "AT_TIMESTAMP:2024-01-02"])
def test_bad_starting_positions(text: str) -> None:
    with pytest.raises(ofs.OffsetError):
        ofs.parse_starting_position(text, now_ms=0)


def test_apply_outcomes_moves_read_shards_after_the_reached_record() -> None:
    prev = Offset(
        "000000000001-x",
        "TRIM_HORIZON",
        None,
        {
            "s/a": ShardState("TRIM_HORIZON", read=True, max_records=10),
            "s/b": ShardState("AFTER:5", read=True),
            "s/c": ShardState("AFTER:7"),
        },
    )
    outcomes = {"s/a": Outcome(BIG_SEQ, 10, more=True), "s/b": Outcome(None, 0, ended=True)}
    assert ofs.apply_outcomes(prev, outcomes) == {
        "s/a": ShardState(f"AFTER:{BIG_SEQ}"),
        "s/b": ShardState("AFTER:5", done=True),
        "s/c": ShardState("AFTER:7"),
    }


SPLIT = [
    ShardInfo("s/0", (), closed=True),
    ShardInfo("s/1"),
    ShardInfo("s/2", ("s/0",)),
    ShardInfo("s/3", ("s/0",)),
]


def test_children_wait_until_the_parent_is_read_to_its_end() -> None:
    states, lost = ofs.reconcile({}, SPLIT, "TRIM_HORIZON")
    assert sorted(states) == ["s/0", "s/1"] and lost == []
    states, _ = ofs.reconcile(states, SPLIT, "TRIM_HORIZON")
    assert sorted(states) == ["s/0", "s/1"]


def test_done_parent_adds_children_and_is_retired_for_good() -> None:
    states = {"s/0": ShardState("AFTER:9", done=True), "s/1": ShardState("AFTER:3")}
    states, _ = ofs.reconcile(states, SPLIT, "TRIM_HORIZON")
    assert states == {
        "s/1": ShardState("AFTER:3"),
        "s/2": ShardState("TRIM_HORIZON"),
        "s/3": ShardState("TRIM_HORIZON"),
    }
    # The retired parent is still listed but must not come back.
    again, _ = ofs.reconcile(states, SPLIT, "TRIM_HORIZON")
    assert again == states


def test_merge_child_waits_for_both_parents() -> None:
    listing = [
        ShardInfo("s/a", (), True),
        ShardInfo("s/b", (), True),
        ShardInfo("s/c", ("s/a", "s/b")),
    ]
    half = {"s/a": ShardState("AFTER:1", done=True), "s/b": ShardState("AFTER:2")}
    states, _ = ofs.reconcile(half, listing, "TRIM_HORIZON")
    assert states == half
    both = {"s/a": ShardState("AFTER:1", done=True), "s/b": ShardState("AFTER:2", done=True)}
    states, _ = ofs.reconcile(both, listing, "TRIM_HORIZON")
    assert states == {"s/c": ShardState("TRIM_HORIZON")}
    assert ofs.reconcile(states, listing, "TRIM_HORIZON")[0] == states


def test_grandchildren_of_retired_shards_keep_them_retired() -> None:
    listing = [*SPLIT[:3], ShardInfo("s/3", ("s/0",), True), ShardInfo("s/4", ("s/3",))]
    states = {"s/1": ShardState("x"), "s/2": ShardState("y"), "s/4": ShardState("z")}
    assert ofs.reconcile(states, listing, "TRIM_HORIZON")[0] == states


def test_unfinished_shard_missing_from_listing_is_reported_lost() -> None:
    states = {"s/gone": ShardState("AFTER:1"), "s/1": ShardState("AFTER:2")}
    out, lost = ofs.reconcile(states, [ShardInfo("s/1")], "TRIM_HORIZON")
    assert lost == ["s/gone"] and list(out) == ["s/1"]


def test_new_shards_start_at_the_query_starting_position() -> None:
    states, _ = ofs.reconcile({}, [ShardInfo("s/1")], "AT_TIMESTAMP:1000")
    assert states == {"s/1": ShardState("AT_TIMESTAMP:1000")}


def test_allocate_rows_splits_exactly_and_rotates() -> None:
    shards = ["a", "b", "c"]
    assert ofs.allocate(shards, 0, 10, None) == {"a": (4, None), "b": (3, None), "c": (3, None)}
    assert ofs.allocate(shards, 1, 2, None) == {"b": (1, None), "c": (1, None)}
    assert ofs.allocate(shards, 0, None, 900) == {k: (None, 300) for k in shards}
    assert ofs.allocate([], 0, 5, 5) == {}
    assert sum(n or 0 for n, _ in ofs.allocate(shards, 5, 7, None).values()) == 7


def test_next_offset_is_none_when_nothing_changes() -> None:
    prev = Offset("000000000004-x", "TRIM_HORIZON", 1, {"s/a": ShardState("AFTER:1", read=True)})
    resolved = {"s/a": ShardState("AFTER:9")}
    assert ofs.next_offset(prev, resolved, dict(resolved), {}, 2) is None
    nxt = ofs.next_offset(prev, resolved, dict(resolved), {"s/a": (5, None)}, 2)
    assert nxt is not None and nxt.counter == 5 and nxt.until == 2
    assert nxt.shards["s/a"] == ShardState("AFTER:9", read=True, max_records=5)
    done = {"s/a": ShardState("AFTER:9", done=True)}
    assert ofs.next_offset(prev, resolved, done, {}, 2) is not None


def test_outcome_files_are_created_once(tmp_path) -> None:
    store = MetaStore(str(tmp_path))
    first = Outcome(BIG_SEQ, 3, more=True)
    assert store.read("000000000001-x", "s/shardId-1") is None
    assert store.publish("000000000001-x", "s/shardId-1", first) == first
    assert store.publish("000000000001-x", "s/shardId-1", Outcome("1", 1)) == first
    assert store.read("000000000001-x", "s/shardId-1") == first
    for counter in range(2, 30):
        store.publish(f"{counter:012d}-x", "s/shardId-1", first)
    store.prune("000000000029-x")
    assert store.read("000000000001-x", "s/shardId-1") is None
    assert store.read("000000000029-x", "s/shardId-1") == first


BASE = {"streamName": "a,b", "region": "us-east-1", "metadataPath": "/m"}


def test_options_any_case_and_lists() -> None:
    opts = KinesisOptions.parse(
        {
            "streamname": " a , b ",
            "REGION": "eu-west-1",
            "metadatapath": "/m",
            "maxrecordsperbatch": "5",
        }
    )
    assert opts.streams == ("a", "b") and opts.connection.region == "eu-west-1"
    assert opts.max_records == 5 and opts.max_bytes is None


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"awsSecretKey": "x"}, "credentials are not accepted"),
        ({"streamName": ""}, "streamName: required"),
        ({"streamName": "bad name!"}, "invalid Kinesis stream name"),
        ({"metadataPath": ""}, "metadataPath: required"),
        ({"maxRecordsPerBatch": "many"}, "maxRecordsPerBatch"),
        ({"maxBytesPerBatch": "0"}, "maxBytesPerBatch"),
        ({"startingPosition": "YESTERDAY"}, "startingPosition"),
        ({"shardsPerTask": "2"}, "unknown option"),
    ],
)
def test_bad_options_name_the_option(extra: dict[str, str], message: str) -> None:
    with pytest.raises(KinesisOptionError, match=message):
        KinesisOptions.parse({**BASE, **extra})


class _IteratorClient:
    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def get_shard_iterator(self, **kwargs: Any) -> dict[str, str]:
        self.calls.append(kwargs)
        return {"ShardIterator": "it-1"}


def test_at_timestamp_iterator_carries_exact_milliseconds() -> None:
    client = _IteratorClient()
    assert shard_iterator(client, "s", "shardId-0", "AT_TIMESTAMP:1764144244123") == "it-1"
    (call,) = client.calls
    assert call["ShardIteratorType"] == "AT_TIMESTAMP"
    assert call["Timestamp"] == datetime(2025, 11, 26, 8, 4, 4, 123000, tzinfo=UTC)


def test_after_and_unknown_positions() -> None:
    client = _IteratorClient()
    shard_iterator(client, "s", "shardId-0", "AFTER:4968")
    assert client.calls[0]["ShardIteratorType"] == "AFTER_SEQUENCE_NUMBER"
    assert client.calls[0]["StartingSequenceNumber"] == "4968"
    with pytest.raises(ValueError, match="unknown shard position"):
        shard_iterator(client, "s", "shardId-0", "LATEST")
