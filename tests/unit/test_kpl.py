"""KPL aggregation codec (pure Python protobuf) - no Spark."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from spark_jobs.sources.kinesis import kpl
from spark_jobs.sources.kinesis.kpl import SubRecord
from spark_jobs.sources.kinesis.reading import to_record_batch


def test_round_trip_keeps_order_keys_and_hash_keys() -> None:
    records = [
        SubRecord("a", b"one"),
        SubRecord("b", b"", "12345"),
        SubRecord("a", b"\x00\xff" * 300),
    ]
    blob = kpl.encode(records)
    assert blob[:4] == bytes.fromhex("F3899AC2")
    assert blob[-16:] == hashlib.md5(blob[4:-16]).digest()
    assert kpl.decode(blob) == records


def test_known_bytes_decode() -> None:
    # partition_key_table=["k"], records=[{pk_index: 0, data: "hi"}], built by hand.
    message = bytes([0x0A, 0x01]) + b"k" + bytes([0x1A, 0x06, 0x08, 0x00, 0x1A, 0x02]) + b"hi"
    blob = kpl.MAGIC + message + hashlib.md5(message).digest()
    assert kpl.decode(blob) == [SubRecord("k", b"hi")]
    assert kpl.encode([SubRecord("k", b"hi")]) == blob


@pytest.mark.parametrize(
    "blob",
    [b"", b"plain json {}", kpl.MAGIC, kpl.MAGIC + b"x" * 16, kpl.MAGIC + b"\x0a\x01k" + b"0" * 16],
)
def test_not_aggregated_is_none(blob: bytes) -> None:
    assert kpl.decode(blob) is None


def test_bad_md5_is_treated_as_plain_record() -> None:
    blob = bytearray(kpl.encode([SubRecord("a", b"x")]))
    blob[-1] ^= 0xFF
    assert kpl.decode(bytes(blob)) is None


def test_malformed_body_with_valid_md5_raises() -> None:
    message = b"\x1a\x05\x08"  # length says 5, only 1 byte follows
    blob = kpl.MAGIC + message + hashlib.md5(message).digest()
    with pytest.raises(kpl.KplDecodeError):
        kpl.decode(blob)


def test_unknown_fields_such_as_tags_are_skipped() -> None:
    tag = bytes([0x0A, 0x01]) + b"t"
    inner = bytes([0x08, 0x00, 0x1A, 0x01]) + b"d" + bytes([0x22, len(tag)]) + tag
    message = bytes([0x0A, 0x01]) + b"p" + bytes([0x1A, len(inner)]) + inner
    blob = kpl.MAGIC + message + hashlib.md5(message).digest()
    assert kpl.decode(blob) == [SubRecord("p", b"d")]


def test_sub_sequence_numbers_sort_like_sub_records() -> None:
    seq = "49680573962909090495911772200723128684142398556182937602"
    ids = [kpl.sub_sequence_number(seq, i) for i in (0, 2, 10, 100)]
    assert ids == sorted(ids)
    assert ids[2] == f"{seq}:000010"


@given(
    st.lists(
        st.tuples(st.text(min_size=1, max_size=5), st.binary(max_size=50)),
        min_size=1,
        max_size=20,
    )
)
def test_round_trip_property(items: list[tuple[str, bytes]]) -> None:
    records = [SubRecord(k, d) for k, d in items]
    assert kpl.decode(kpl.encode(records)) == records


def _with_digest(message: bytes) -> bytes:
    return kpl.MAGIC + message + hashlib.md5(message).digest()


@pytest.mark.parametrize(
    "blob",
    [
        _with_digest(b"\x1a\x05\x08"),  # a field longer than the body
        _with_digest(b"\x0a\x01\xff" + b"\x1a\x03\x08\x00\x1a"),  # a partition key not UTF-8
    ],
)
def test_the_reader_passes_an_undecodable_aggregate_on_as_one_record(blob: bytes) -> None:
    rec = {
        "SequenceNumber": "7",
        "PartitionKey": "pk",
        "ApproximateArrivalTimestamp": datetime(2026, 1, 1, tzinfo=UTC),
        "Data": blob,
    }
    batch = to_record_batch("s", "shardId-0", [rec])
    assert batch.column("sequence_number").to_pylist() == ["7"]
    assert batch.column("data").to_pylist() == [blob]
