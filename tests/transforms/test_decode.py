"""Decoding Kinesis records: CloudWatch envelopes, raw lines, and every kind of bad record."""

from __future__ import annotations

import base64
import gzip
import json
from datetime import datetime
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyspark.sql import DataFrame, SparkSession

from spark_jobs.schemas import KINESIS_RECORD_SCHEMA, LINE_SCHEMA, QUARANTINE_SCHEMA
from spark_jobs.transforms.decode import (
    decode_records,
    filter_control,
    filter_lines,
    to_quarantine,
)
from spark_jobs.transforms.parse import filter_valid_flows, parse_flow_lines

ARRIVAL = datetime(2024, 5, 1, 12, 0, 0)
STREAM, SHARD = "vpc-flows", "shardId-000000000001"
ORIGIN = f"kinesis:{STREAM}/{SHARD}"
FLOW_1 = (
    "2 123456789010 eni-1235b8ca123456789 172.31.16.139 172.31.16.21 20641 22 6 20 4249 "
    "1418530010 1418530070 ACCEPT OK"
)
FLOW_2 = "2 123456789010 eni-1235b8ca123456789 - - - - - - - 1431280876 1431280934 - NODATA"
FLOW_3 = (
    "2 123456789010 eni-1235b8ca123456789 2001:db8::1 2001:db8::2 443 51000 6 3 180 "
    "1418530010 1418530070 ACCEPT OK"
)


def envelope(messages: list[str], message_type: str = "DATA_MESSAGE") -> dict[str, Any]:
    return {
        "messageType": message_type,
        "owner": "123456789010",
        "logGroup": "vpc-flow-logs",
        "logStream": "eni-1235b8ca123456789-all",
        "subscriptionFilters": ["to-kinesis"],
        "logEvents": [
            {"id": str(36000000 + i), "timestamp": 1418530070000, "message": m}
            for i, m in enumerate(messages)
        ],
    }


def gz_json(obj: Any) -> bytes:
    return gzip.compress(json.dumps(obj).encode())


def records_df(spark: SparkSession, payloads: list[bytes | None]) -> DataFrame:
    rows = [(STREAM, SHARD, str(1000 + i), "pk", ARRIVAL, p) for i, p in enumerate(payloads)]
    return spark.createDataFrame(rows, KINESIS_RECORD_SCHEMA)


def by_offset(df: DataFrame) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for row in df.orderBy("origin_offset", "origin_sub").collect():
        out.setdefault(row.origin_offset, []).append(row.asDict())
    return out


def test_cloudwatch_envelopes_lines_control_and_bad(spark: SparkSession) -> None:
    bomb = gzip.compress(json.dumps(envelope([FLOW_1] * 2000)).encode())
    payloads: list[bytes | None] = [
        gz_json(envelope([FLOW_1, FLOW_2, FLOW_3])),  # 1000
        gz_json(
            envelope(
                ["CWL CONTROL MESSAGE: Checking health of destination Kinesis stream."],
                "CONTROL_MESSAGE",
            )
        ),
        b"this is not gzip",  # 1002
        gz_json(envelope([FLOW_1]))[:-7],  # 1003 truncated
        gzip.compress(b'{"messageType": "DATA_MESSAGE", "logEvents": [}'),  # 1004
        gzip.compress(b"[1, 2, 3]"),  # 1005
        gz_json(envelope([FLOW_1], "SOMETHING_ELSE")),  # 1006
        gz_json(envelope([])),  # 1007
        gzip.compress(b'{"messageType": "DATA_MESSAGE", "x": "\xff\xfe"}'),  # 1008
        b"\x1f\x8b" + b"x" * 8000,  # 1009 too big for max_record_bytes
        bomb,  # 1010 decompresses past max_decoded_bytes
        None,  # 1011
    ]
    decoded = decode_records(
        records_df(spark, payloads), "cloudwatch", max_record_bytes=7000, max_decoded_bytes=50_000
    )
    lines = filter_lines(decoded)
    assert lines.schema == LINE_SCHEMA
    assert [tuple(r) for r in lines.orderBy("origin_sub").collect()] == [
        (ORIGIN, "1000", 0, ARRIVAL, FLOW_1),
        (ORIGIN, "1000", 1, ARRIVAL, FLOW_2),
        (ORIGIN, "1000", 2, ARRIVAL, FLOW_3),
    ]
    assert [tuple(r) for r in filter_control(decoded).collect()] == [
        (ORIGIN, "1001", None, ARRIVAL)
    ]
    quarantine = to_quarantine(decoded)
    assert quarantine.schema.names == QUARANTINE_SCHEMA.names
    bad_rows = quarantine.collect()
    # provenance: stream/shard and sequence number, record-level (no log-event index), times
    assert {(r.origin, r.origin_sub, r.arrival_time) for r in bad_rows} == {(ORIGIN, None, ARRIVAL)}
    assert all(r.quarantined_at is not None for r in bad_rows)
    got = {r.origin_offset: (r.reason, r.raw) for r in bad_rows}
    b64 = [None if p is None else base64.b64encode(p).decode() for p in payloads]
    assert got == {
        "1002": ("bad_gzip", b64[2]),
        "1003": ("bad_gzip", b64[3]),
        "1004": ("bad_json", b64[4]),
        "1005": ("bad_json", b64[5]),
        "1006": ("bad_json", b64[6]),
        "1007": ("empty", b64[7]),
        "1008": ("bad_utf8", b64[8]),
        "1009": ("oversized", b64[9]),
        "1010": ("oversized", b64[10]),
        "1011": ("empty", ""),
    }
    details = {r.origin_offset: r.detail for r in quarantine.collect()}
    assert details["1003"] == "truncated gzip stream"
    assert details["1006"] == "unexpected messageType: SOMETHING_ELSE"
    assert "7000" in details["1009"] and "50000" in details["1010"]


def test_raw_records_one_or_many_lines(spark: SparkSession) -> None:
    payloads: list[bytes | None] = [
        FLOW_1.encode(),
        f"{FLOW_1}\r\n\n{FLOW_2}\n{FLOW_3}\n".encode(),
        gzip.compress(f"{FLOW_2}\n{FLOW_3}".encode()),
        b"\n \n",
        b"2 123 eni \xff\xfe",
    ]
    decoded = by_offset(decode_records(records_df(spark, payloads), "raw"))
    lines = {k: [(r["origin_sub"], r["line"]) for r in v] for k, v in decoded.items()}
    assert lines["1000"] == [(0, FLOW_1)]
    assert lines["1001"] == [(0, FLOW_1), (1, FLOW_2), (2, FLOW_3)]
    assert lines["1002"] == [(0, FLOW_2), (1, FLOW_3)]
    assert [(r["record_kind"], r["reason"]) for r in decoded["1003"]] == [("bad", "empty")]
    assert [(r["record_kind"], r["reason"]) for r in decoded["1004"]] == [("bad", "bad_utf8")]
    assert decoded["1004"][0]["raw"] == base64.b64encode(payloads[4] or b"").decode()


def test_every_gzip_member_is_decoded_and_trailing_bytes_are_bad(spark: SparkSession) -> None:
    two_members = gzip.compress(f"{FLOW_1}\n".encode()) + gzip.compress(FLOW_2.encode())
    payloads: list[bytes | None] = [
        two_members,  # 1000: both members' lines (stopping after the first lost FLOW_2)
        gzip.compress(FLOW_3.encode()) + b"\x00" * 8,  # 1001: zero padding is ignored
        gzip.compress(FLOW_1.encode()) + b"junk",  # 1002
        two_members[:-3],  # 1003: second member truncated
    ]
    decoded = by_offset(decode_records(records_df(spark, payloads), "raw"))
    assert [(r["origin_sub"], r["line"]) for r in decoded["1000"]] == [(0, FLOW_1), (1, FLOW_2)]
    assert [r["line"] for r in decoded["1001"]] == [FLOW_3]
    bad = {k: (v[0]["record_kind"], v[0]["reason"], v[0]["detail"]) for k, v in decoded.items()}
    assert bad["1002"] == ("bad", "bad_gzip", "4 bytes of trailing data after the gzip stream")
    assert bad["1003"] == ("bad", "bad_gzip", "truncated gzip stream")


def test_anything_after_the_envelope_is_bad_json(spark: SparkSession) -> None:
    one = json.dumps(envelope([FLOW_1]))
    payloads: list[bytes | None] = [
        gzip.compress(f"{one}\n".encode()),  # 1000: trailing whitespace is fine
        gz_json(envelope([FLOW_2])) * 2,  # 1001: two gzip members = two envelopes in one record
        gzip.compress(f"{one} junk".encode()),  # 1002
        gzip.compress(f"{one}]".encode()),  # 1003
        gzip.compress(b""),  # 1004
    ]
    decoded = by_offset(decode_records(records_df(spark, payloads), "cloudwatch"))
    assert [(r["record_kind"], r["line"]) for r in decoded["1000"]] == [("line", FLOW_1)]
    for offset in ("1001", "1002", "1003", "1004"):
        (row,) = decoded[offset]
        assert (row["record_kind"], row["reason"], row["detail"]) == (
            "bad",
            "bad_json",
            "not a single JSON object",
        ), offset


def test_an_envelope_without_a_message_type_is_bad_json(spark: SparkSession) -> None:
    untyped = {k: v for k, v in envelope([FLOW_1]).items() if k != "messageType"}
    decoded = decode_records(records_df(spark, [gz_json(untyped)]), "cloudwatch")
    assert [(r.record_kind, r.reason, r.detail) for r in decoded.collect()] == [
        ("bad", "bad_json", "unexpected messageType: null")
    ]


def test_decoded_lines_parse_end_to_end(spark: SparkSession) -> None:
    decoded = decode_records(records_df(spark, [gz_json(envelope([FLOW_1, FLOW_3]))]))
    flows = filter_valid_flows(parse_flow_lines(filter_lines(decoded), None))
    got = [(r.srcaddr, r.dstaddr, r.dstport, r.origin, r.origin_sub) for r in flows.collect()]
    assert sorted(got, key=lambda t: t[4]) == [
        ("172.31.16.139", "172.31.16.21", 22, ORIGIN, 0),
        ("2001:db8::1", "2001:db8::2", 51000, ORIGIN, 1),
    ]


def assert_every_record_lands_once(decoded: DataFrame, n_records: int) -> None:
    rows = decoded.select("origin_offset", "record_kind", "line", "reason").collect()
    kinds: dict[str, set[str]] = {}
    for row in rows:
        kinds.setdefault(row.origin_offset, set()).add(row.record_kind)
        assert (row.record_kind == "line") == (row.line is not None)
        assert (row.record_kind == "bad") == (row.reason is not None)
    # records in = records with lines + control + quarantined, each record in exactly one
    assert len(kinds) == n_records
    assert all(len(k) == 1 for k in kinds.values()), kinds
    n_bad = sum(1 for r in rows if r.record_kind == "bad")
    n_control = sum(1 for r in rows if r.record_kind == "control")
    n_line_records = sum(1 for k in kinds.values() if k == {"line"})
    assert n_line_records + n_bad + n_control == n_records


def test_invariant_on_a_mixed_batch(spark: SparkSession) -> None:
    payloads = [
        gz_json(envelope([FLOW_1, FLOW_2])),
        gz_json(envelope(["health"], "CONTROL_MESSAGE")),
        b"junk",
        gz_json(envelope([FLOW_3])),
    ]
    decoded = decode_records(records_df(spark, payloads))
    assert_every_record_lands_once(decoded, len(payloads))
    assert filter_lines(decoded).count() == 3
    assert filter_control(decoded).count() == 1
    assert to_quarantine(decoded).count() == 1


_json_text = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=10),
    lambda kids: (
        st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=8), kids, max_size=3)
    ),
    max_leaves=8,
).map(json.dumps)
_fuzz_record = st.one_of(
    st.binary(max_size=300),
    st.binary(max_size=300).map(gzip.compress),
    st.binary(max_size=300).map(lambda b: gzip.compress(b)[: max(1, len(b) // 2)]),
    _json_text.map(lambda t: gzip.compress(t.encode())),
    st.lists(st.text(max_size=40), max_size=4).map(lambda ms: gz_json(envelope(ms))),
    st.sampled_from(["DATA_MESSAGE", "CONTROL_MESSAGE", "X", ""]).map(
        lambda t: gzip.compress(json.dumps({"messageType": t, "logEvents": [{"id": 1}]}).encode())
    ),
)


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    payloads=st.lists(_fuzz_record, min_size=1, max_size=12),
    record_format=st.sampled_from(["cloudwatch", "raw"]),
)
def test_fuzz_random_bytes_never_crash_the_decoder(
    spark: SparkSession, payloads: list[bytes], record_format: str
) -> None:
    decoded = decode_records(records_df(spark, payloads), record_format)  # type: ignore[arg-type]
    assert_every_record_lands_once(decoded, len(payloads))
