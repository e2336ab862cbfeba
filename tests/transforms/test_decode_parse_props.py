"""Decode + parse together: random formats round-trip through Kinesis records, random text
never crashes the parser, and every batch balances (records in = records with lines +
quarantined records + control messages; lines = valid + quarantined lines)."""

from __future__ import annotations

import gzip
import json
from datetime import datetime
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.types import StringType, StructField, StructType
from test_parse import assert_parsed_as_given, formats_and_lines

from spark_jobs.jobs.enrich_flows import kinesis_stage, text_file_stage
from spark_jobs.quality.suites import QUARANTINE_REASONS
from spark_jobs.schemas import FIELDS_BY_NAME, KINESIS_RECORD_SCHEMA, format_string
from spark_jobs.transforms.decode import decode_records, filter_control, filter_lines
from spark_jobs.transforms.parse import (
    MAX_PORT,
    MAX_PROTOCOL,
    parse_flow_lines,
    parse_flow_lines_with_header,
)

ARRIVAL = datetime(2024, 5, 1, 12, 0, 0)
STREAM, SHARD = "flows", "shardId-000000000007"
ORIGIN = f"kinesis:{STREAM}/{SHARD}"
SETTINGS = settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def envelope(messages: list[str], message_type: str = "DATA_MESSAGE") -> bytes:
    events = [{"id": str(i), "timestamp": 0, "message": m} for i, m in enumerate(messages)]
    env = {"messageType": message_type, "owner": "123456789010", "logGroup": "g",
           "logStream": "s", "subscriptionFilters": ["f"], "logEvents": events}  # fmt: skip
    return gzip.compress(json.dumps(env).encode())


def records_df(spark: SparkSession, payloads: list[bytes]) -> DataFrame:
    rows = [(STREAM, SHARD, str(500 + i), "pk", ARRIVAL, p) for i, p in enumerate(payloads)]
    return spark.createDataFrame(rows, KINESIS_RECORD_SCHEMA)


@SETTINGS
@given(
    case=formats_and_lines(),
    record_format=st.sampled_from(["cloudwatch", "raw", "raw-gzip"]),
)
def test_random_formats_round_trip_through_kinesis_records(
    spark: SparkSession, case: tuple[list[str], list[list[str]]], record_format: str
) -> None:
    names, rows = case
    lines = [" ".join(r) for r in rows]
    if record_format == "cloudwatch":
        payloads = [envelope(lines), envelope(["CWL CONTROL MESSAGE"], "CONTROL_MESSAGE")]
    else:
        text = "\n".join(lines).encode()
        payloads = [gzip.compress(text) if record_format == "raw-gzip" else text]
    decoded = decode_records(records_df(spark, payloads), record_format.split("-")[0])  # type: ignore[arg-type]
    parsed = parse_flow_lines(filter_lines(decoded), format_string(names))
    got = [r.asDict() for r in parsed.orderBy("origin_sub").collect()]
    assert [(r["origin"], r["origin_offset"], r["origin_sub"]) for r in got] == [
        (ORIGIN, "500", i) for i in range(len(rows))
    ]
    for parsed_row, tokens in zip(got, rows, strict=True):
        assert_parsed_as_given(parsed_row, names, tokens)
    n_control = filter_control(decoded).count()
    assert n_control == (1 if record_format == "cloudwatch" else 0)


# Tokens that look almost right: the parser's checks must sort them, never crash on them.
_near_tokens = st.one_of(
    st.sampled_from(["-", "", "0", "65536", "256", "-1", "1.5", "1e3", "99999999999999999999",
                     "10.0.0.256", "01.2.3.4", "::", "::1::", "2001:db8::g", "NODATA", "OK"]),
    st.text(" \t0123456789abcdef.:-", max_size=12),
    st.text(max_size=8),
)  # fmt: skip
_fuzz_lines = st.lists(
    st.lists(_near_tokens, max_size=8).map(" ".join) | st.text(max_size=60), min_size=1, max_size=6
)
_fuzz_names = st.lists(st.sampled_from(list(FIELDS_BY_NAME)), min_size=1, max_size=8, unique=True)


def _assert_sorted_out(rows: list[Any], n_lines: int) -> None:
    """One output row per line; each is valid with sane values, or has a known reason."""
    assert len(rows) == n_lines
    for r in rows:
        if r.quarantine_reason is not None:
            assert r.quarantine_reason in QUARANTINE_REASONS, r.quarantine_reason
            assert r.quarantine_detail is not None
            continue
        assert all(p is None or 0 <= p <= MAX_PORT for p in (r.srcport, r.dstport))
        assert r.protocol is None or 0 <= r.protocol <= MAX_PROTOCOL
        assert r.start_time is None or r.end_time is None or r.start_time <= r.end_time
        assert (r.srcaddr is None) == (r.srcaddr_key is None)


@SETTINGS
@given(lines=_fuzz_lines, names=_fuzz_names)
def test_fuzz_random_lines_never_crash_the_parser(
    spark: SparkSession, lines: list[str], names: list[str]
) -> None:
    df = records_df(spark, ["\n".join(lines).encode()])  # not parsed: only for provenance
    base = df.selectExpr("'o' AS origin", "sequence_number AS origin_offset",
                         "0 AS origin_sub", "approximate_arrival_timestamp AS arrival_time")  # fmt: skip
    lines_df = spark.createDataFrame([(line,) for line in lines], "line string").crossJoin(base)
    _assert_sorted_out(parse_flow_lines(lines_df, format_string(names)).collect(), len(lines))


_fuzz_headers = st.text(" ${}abcdefghijklmnopqrstuvwxyz-", max_size=40)


# The per-row header path is one plan for every header: several random headers go through
# one batch (as files with different headers do), each checked on its own lines.
@settings(
    max_examples=4, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(cases=st.lists(st.tuples(_fuzz_lines, _fuzz_headers), min_size=1, max_size=8))
def test_fuzz_random_headers_never_crash_the_header_parser(
    spark: SparkSession, cases: list[tuple[list[str], str]]
) -> None:
    schema = StructType(
        [StructField(c, StringType()) for c in ("origin", "origin_offset", "line", "log_format")]
    )
    rows = [(f"o{c}", str(i), line, header)
            for c, (lines, header) in enumerate(cases) for i, line in enumerate(lines)]  # fmt: skip
    df = spark.createDataFrame(rows, schema).selectExpr(
        "origin", "origin_offset", "0 AS origin_sub", "current_timestamp() AS arrival_time",
        "line", "log_format",
    )  # fmt: skip
    parsed = parse_flow_lines_with_header(df).collect()
    for c, (lines, _) in enumerate(cases):
        _assert_sorted_out([r for r in parsed if r.origin == f"o{c}"], len(lines))


GOOD = (
    "2 123456789010 eni-1 192.0.2.1 198.51.100.2 443 51000 6 10 840 1700000000 1700000060 ACCEPT OK"
)
BAD = GOOD.replace(" 51000 ", " 70000 ")


def test_kinesis_batch_balances(spark: SparkSession) -> None:
    payloads = [
        envelope([GOOD, BAD, GOOD]),  # 500: a record with lines, one of them bad
        envelope(["health"], "CONTROL_MESSAGE"),  # 501
        b"not gzip",  # 502
        gzip.compress(b"{} trailing"),  # 503
        envelope([GOOD]),  # 504
    ]
    staged = kinesis_stage("cloudwatch", None)(records_df(spark, payloads), lambda df: df)
    parsed = staged.parsed.collect()
    with_lines = {(r.origin, r.origin_offset) for r in parsed}
    bad_records = staged.bad_records.collect()
    control = staged.control.collect()
    assert staged.records.count() == 5
    assert staged.records.count() == len(with_lines) + len(bad_records) + len(control)
    assert sorted(o for _, o in with_lines) == ["500", "504"]
    assert sorted((r.origin_offset, r.reason) for r in bad_records) == [
        ("502", "bad_gzip"),
        ("503", "bad_json"),
    ]
    assert [r.origin_offset for r in control] == ["501"]
    bad_lines = [(r.origin_offset, r.origin_sub, r.quarantine_reason) for r in parsed
                 if r.quarantine_reason is not None]  # fmt: skip
    assert bad_lines == [("500", 1, "port_range")]
    assert len(parsed) - len(bad_lines) == 3


def test_text_file_batch_balances(spark: SparkSession) -> None:
    schema = StructType(
        [StructField(c, StringType()) for c in ("origin", "origin_offset", "line", "log_format")]
    )
    header = "srcaddr dstport"
    rows = [("file:a.log.gz", "2", "192.0.2.1 443", header),
            ("file:a.log.gz", "3", "192.0.2.1 99999", header),
            ("file:b.log.gz", "2", "192.0.2.9", "srcaddr")]  # fmt: skip
    lines = spark.createDataFrame(rows, schema).selectExpr(
        "origin", "origin_offset", "0 AS origin_sub", "current_timestamp() AS arrival_time",
        "line", "log_format",
    )  # fmt: skip
    staged = text_file_stage()(lines, lambda df: df)
    parsed = staged.parsed.collect()
    assert staged.records.count() == len(parsed) == 3
    assert staged.bad_records.count() == 0 and staged.control.count() == 0
    assert sorted((r.origin, r.origin_offset, r.quarantine_reason) for r in parsed) == [
        ("file:a.log.gz", "2", None),
        ("file:a.log.gz", "3", "port_range"),
        ("file:b.log.gz", "2", None),
    ]
