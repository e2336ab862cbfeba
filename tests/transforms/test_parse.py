"""Format-driven flow-line parsing: every field and version, AWS examples, bad input."""

from __future__ import annotations

import hashlib
import ipaddress
from datetime import datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyspark.sql import DataFrame, Row, SparkSession
from pyspark.sql.types import StringType, StructField, StructType
from pyspark.testing import assertDataFrameEqual

from spark_jobs.schemas import (
    CORE_FIELD_NAMES,
    DEFAULT_FORMAT,
    FIELDS,
    FIELDS_BY_NAME,
    LINE_SCHEMA,
    PARSED_FLOW_SCHEMA,
    QUARANTINE_SCHEMA,
    FormatError,
    format_string,
)
from spark_jobs.transforms.flow_values import RULES_BY_FIELD
from spark_jobs.transforms.ip import canonical_ip_py, ip_key_py
from spark_jobs.transforms.parse import (
    filter_valid_flows,
    parse_flow_lines,
    parse_flow_lines_by_format,
    parse_flow_lines_with_header,
    to_quarantine_rows,
)

ARRIVAL = datetime(2024, 5, 1, 12, 0, 0)


def value_of(row: Any, field: Any) -> Any:
    """A parsed row's value of a flow-log field: its column for a core field, else its text
    in the ``extra`` map (None when absent)."""
    if field.name in CORE_FIELD_NAMES:
        return row[field.column]
    return (row["extra"] or {}).get(field.column)


ORIGIN = "kinesis:flows/shardId-000000000000"


def lines_df(spark: SparkSession, lines: list[str], **extra: str) -> DataFrame:
    rows = [(ORIGIN, str(100 + i), i, ARRIVAL, line) for i, line in enumerate(lines)]
    df = spark.createDataFrame(rows, LINE_SCHEMA)
    for name, value in extra.items():
        from pyspark.sql import functions as F

        df = df.withColumn(name, F.lit(value))
    return df


def ts(epoch: int) -> datetime:
    return datetime.fromtimestamp(epoch)  # what pyspark returns for a timestamp column


def parse_rows(
    spark: SparkSession, lines: list[str], fmt: str | None = None
) -> list[dict[str, Any]]:
    parsed = parse_flow_lines(lines_df(spark, lines), fmt)
    return [r.asDict() for r in parsed.orderBy("origin_sub").collect()]


# ---- AWS documentation examples ----------------------------------------------------------

AWS_V5_FORMAT = (
    "${version} ${vpc-id} ${subnet-id} ${instance-id} ${interface-id} ${account-id} ${type} "
    "${srcaddr} ${dstaddr} ${srcport} ${dstport} ${pkt-srcaddr} ${pkt-dstaddr} ${protocol} "
    "${bytes} ${packets} ${start} ${end} ${action} ${tcp-flags} ${log-status}"
)


def test_aws_default_format_examples(spark: SparkSession) -> None:
    lines = [
        "2 123456789010 eni-1235b8ca123456789 172.31.16.139 172.31.16.21 20641 22 6 20 4249 "
        "1418530010 1418530070 ACCEPT OK",
        "2 123456789010 eni-1235b8ca123456789 172.31.9.69 172.31.9.12 49761 3389 6 20 4249 "
        "1418530010 1418530070 REJECT OK",
        "2 123456789010 eni-1235b8ca123456789 - - - - - - - 1431280876 1431280934 - NODATA",
        "2 123456789010 eni-11111111aaaaaaaaa - - - - - - - 1431280876 1431280934 - SKIPDATA",
    ]
    parsed = parse_flow_lines(lines_df(spark, lines), None)
    got = parsed.select(
        "version", "account_id", "interface_id", "srcaddr", "dstaddr", "srcport", "dstport",
        "protocol", "packets", "bytes", "start_time", "end_time", "action", "log_status",
        "is_traffic", "quarantine_reason",
    )  # fmt: skip
    expected = spark.createDataFrame(
        [
            (
                2,
                "123456789010",
                "eni-1235b8ca123456789",
                "172.31.16.139",
                "172.31.16.21",
                20641,
                22,
                6,
                20,
                4249,
                ts(1418530010),
                ts(1418530070),
                "ACCEPT",
                "OK",
                True,
                None,
            ),
            (
                2,
                "123456789010",
                "eni-1235b8ca123456789",
                "172.31.9.69",
                "172.31.9.12",
                49761,
                3389,
                6,
                20,
                4249,
                ts(1418530010),
                ts(1418530070),
                "REJECT",
                "OK",
                True,
                None,
            ),
            (
                2,
                "123456789010",
                "eni-1235b8ca123456789",
                None,
                None,
                None,
                None,
                None,
                None,
                None,
                ts(1431280876),
                ts(1431280934),
                None,
                "NODATA",
                False,
                None,
            ),
            (
                2,
                "123456789010",
                "eni-11111111aaaaaaaaa",
                None,
                None,
                None,
                None,
                None,
                None,
                None,
                ts(1431280876),
                ts(1431280934),
                None,
                "SKIPDATA",
                False,
                None,
            ),
        ],
        got.schema,
    )
    assertDataFrameEqual(got, expected, checkRowOrder=False)
    # NODATA/SKIPDATA are valid rows, kept for completeness but not traffic
    valid = filter_valid_flows(parsed).collect()
    assert sorted(r.log_status for r in valid) == ["NODATA", "OK", "OK", "SKIPDATA"]


def test_aws_custom_format_example_with_nat_packet_addresses(spark: SparkSession) -> None:
    line = (
        "3 vpc-abcdefab012345678 subnet-aaaaaaaa012345678 i-01234567890123456 "
        "eni-1235b8ca123456789 123456789010 IPv4 10.40.1.175 10.40.2.236 39812 80 "
        "10.20.33.164 10.40.2.236 6 3025 15 1566848875 1566848933 ACCEPT 19 OK"
    )
    (row,) = parse_rows(spark, [line], AWS_V5_FORMAT)
    assert row["quarantine_reason"] is None
    assert row["vpc_id"] == "vpc-abcdefab012345678"
    assert row["subnet_id"] == "subnet-aaaaaaaa012345678"
    assert row["instance_id"] == "i-01234567890123456"
    assert row["type"] == "IPv4"
    assert (row["srcaddr"], row["pkt_srcaddr"]) == ("10.40.1.175", "10.20.33.164")
    assert row["pkt_srcaddr_key"] == ip_key_py("10.20.33.164")
    assert (row["pkt_dstaddr"], row["pkt_dstaddr_key"]) == ("10.40.2.236", ip_key_py("10.40.2.236"))
    assert (row["bytes"], row["packets"], row["tcp_flags"]) == (3025, 15, 19)
    assert (row["start_time"], row["end_time"]) == (ts(1566848875), ts(1566848933))
    assert row["region"] is None and row["extra"] is None  # a v5 format's fields are all core


def test_aws_icmp_and_ipv6_examples(spark: SparkSession) -> None:
    lines = [
        "2 123456789010 eni-1235b8ca123456789 203.0.113.12 172.31.16.139 0 0 1 4 336 "
        "1432917027 1432917142 ACCEPT OK",
        "2 123456789010 eni-1235b8ca123456789 172.31.16.139 203.0.113.12 0 0 1 4 336 "
        "1432917094 1432917142 REJECT OK",
        "2 123456789010 eni-1235b8ca123456789 2001:db8:1234:a100:8d6e:3477:df66:f105 "
        "2001:db8:1234:a102:3304:8879:34cf:4071 34892 22 6 54 8855 1477913708 1477913820 "
        "ACCEPT OK",
    ]
    got = [
        (r["srcaddr"], r["dstaddr_key"], r["srcport"], r["dstport"], r["protocol"],
         r["packets"], r["bytes"], r["end_time"], r["action"], r["quarantine_reason"])
        for r in parse_rows(spark, lines)
    ]  # fmt: skip
    assert got == [
        ("203.0.113.12", "00000000000000000000ffffac1f108b", 0, 0, 1, 4, 336, ts(1432917142),
         "ACCEPT", None),
        ("172.31.16.139", "00000000000000000000ffffcb00710c", 0, 0, 1, 4, 336, ts(1432917142),
         "REJECT", None),
        ("2001:db8:1234:a100:8d6e:3477:df66:f105", "20010db81234a1023304887934cf4071",
         34892, 22, 6, 54, 8855, ts(1477913820), "ACCEPT", None),
    ]  # fmt: skip


# ---- every field of every version ------------------------------------------------------

# field -> (token in the line, expected parsed value)
ALL_VALUES: dict[str, tuple[str, Any]] = {
    "version": ("10", 10),
    "account-id": ("123456789010", "123456789010"),
    "interface-id": ("eni-0123456789abcdef0", "eni-0123456789abcdef0"),
    "srcaddr": ("2001:DB8:0:0:0:0:0:1", "2001:db8::1"),
    "dstaddr": ("198.51.100.7", "198.51.100.7"),
    "srcport": ("0", 0),
    "dstport": ("65535", 65535),
    "protocol": ("255", 255),
    "packets": ("9000000000", 9_000_000_000),
    "bytes": ("12345678901234", 12_345_678_901_234),
    "start": ("1700000000", ts(1700000000)),
    "end": ("1700000000", ts(1700000000)),
    "action": ("REJECT", "REJECT"),
    "log-status": ("OK", "OK"),
    "vpc-id": ("vpc-0a1b", "vpc-0a1b"),
    "subnet-id": ("subnet-0a1b", "subnet-0a1b"),
    "instance-id": ("i-0a1b", "i-0a1b"),
    "tcp-flags": ("18", 18),
    "type": ("IPv6", "IPv6"),
    "pkt-srcaddr": ("2001:db8:0:1::10", "2001:db8:0:1::10"),
    "pkt-dstaddr": ("203.0.113.9", "203.0.113.9"),
    "region": ("eu-west-1", "eu-west-1"),
    "az-id": ("euw1-az2", "euw1-az2"),
    "sublocation-type": ("outpost", "outpost"),
    "sublocation-id": ("op-0123", "op-0123"),
    "pkt-src-aws-service": ("S3", "S3"),
    "pkt-dst-aws-service": ("-", None),
    "flow-direction": ("egress", "egress"),
    "traffic-path": ("8", 8),
    "ecs-cluster-arn": ("arn:aws:ecs:eu-west-1:1:cluster/c", "arn:aws:ecs:eu-west-1:1:cluster/c"),
    "ecs-cluster-name": ("c", "c"),
    "ecs-container-instance-arn": ("arn:ci", "arn:ci"),
    "ecs-container-instance-id": ("ci-1", "ci-1"),
    "ecs-container-id": ("ctr-1", "ctr-1"),
    "ecs-second-container-id": ("ctr-2", "ctr-2"),
    "ecs-service-name": ("web", "web"),
    "ecs-task-definition-arn": ("arn:td:3", "arn:td:3"),
    "ecs-task-arn": ("arn:task", "arn:task"),
    "ecs-task-id": ("t-1", "t-1"),
    "reject-reason": ("BPA", "BPA"),
    "resource-id": ("nat-0123", "nat-0123"),
    "encryption-status": ("1", 1),
}


def test_value_table_covers_the_whole_catalog() -> None:
    assert set(ALL_VALUES) == set(FIELDS_BY_NAME)


@pytest.mark.parametrize("version", [2, 3, 4, 5, 7, 8, 10])
def test_fields_up_to_each_version_in_reverse_order(spark: SparkSession, version: int) -> None:
    names = [f.name for f in FIELDS if f.version <= version][::-1]
    line = " ".join(ALL_VALUES[n][0] for n in names)
    (row,) = parse_rows(spark, [line], format_string(names))
    assert row["quarantine_reason"] is None, row["quarantine_detail"]
    for f in FIELDS:
        token, typed = ALL_VALUES[f.name]
        text = None if token == "-" else token
        expected = typed if f.name in CORE_FIELD_NAMES else text  # the extra map keeps text
        assert value_of(row, f) == (expected if f.version <= version else None), f.name
    rare = [f for f in FIELDS if f.name not in CORE_FIELD_NAMES and f.version <= version]
    assert (row["extra"] is None) == (not rare)  # no empty map: null
    assert row["srcaddr_key"] == "20010db8000000000000000000000001"
    assert row["dstaddr_key"] == "00000000000000000000ffffc6336407"
    assert row["is_traffic"] is True


def test_output_schema_is_identical_whatever_the_format(spark: SparkSession) -> None:
    small = filter_valid_flows(parse_flow_lines(lines_df(spark, ["10.0.0.1"]), "${srcaddr}"))
    full = filter_valid_flows(
        parse_flow_lines(lines_df(spark, []), format_string(list(ALL_VALUES)))
    )
    assert small.schema == full.schema
    assert [(f.name, f.dataType) for f in small.schema] == [
        (f.name, f.dataType) for f in PARSED_FLOW_SCHEMA
    ]
    (row,) = small.collect()
    assert row.srcaddr == "10.0.0.1" and row.is_traffic is True and row.version is None


def test_flow_id_is_sha2_of_provenance(spark: SparkSession) -> None:
    line = " ".join(ALL_VALUES[n][0] for n in ("srcaddr", "dstaddr"))
    rows = parse_rows(spark, [line, line], "${srcaddr} ${dstaddr}")
    for i, row in enumerate(rows):
        key = f"{ORIGIN}|{100 + i}|{i}".encode()
        assert row["flow_id"] == hashlib.sha256(key).hexdigest()
    assert rows[0]["flow_id"] != rows[1]["flow_id"]


def test_whitespace_around_tokens_is_trimmed_between_them_it_is_one_space(
    spark: SparkSession,
) -> None:
    lines = ["  10.0.0.1 443 \t\r", "10.0.0.1\t443", "10.0.0.1  443", "10.0.0.1 \t 443"]
    lines += ["\t10.0.0.1 443\n", "10.0.0.1 443\r", "\n10.0.0.1  443 "]
    got = [
        (r["srcaddr"], r["dstport"], r["quarantine_reason"], r["quarantine_detail"])
        for r in parse_rows(spark, lines, "${srcaddr} ${dstport}")
    ]
    assert got == [
        ("10.0.0.1", 443, None, None),
        ("10.0.0.1", 443, "bad_separator", "tab between fields"),
        ("10.0.0.1", 443, "bad_separator", "repeated space between fields"),
        ("10.0.0.1", 443, "bad_separator", "tab between fields"),
        ("10.0.0.1", 443, None, None),
        ("10.0.0.1", 443, None, None),
        ("10.0.0.1", 443, "bad_separator", "repeated space between fields"),
    ]


def test_unknown_field_in_format_fails_when_building_the_plan(spark: SparkSession) -> None:
    with pytest.raises(FormatError, match="unknown flow-log field 'srcip'"):
        parse_flow_lines(lines_df(spark, []), "${srcip}")


# ---- bad input ------------------------------------------------------------------------

V2_OK = "2 123456789010 eni-1 {src} {dst} {sport} {dport} {proto} {pk} 4249 {start} {end} ACCEPT OK"
GOOD = dict(src="192.0.2.1", dst="2001:db8::2", sport="443", dport="51000", proto="6", pk="20",
            start="1700000000", end="1700000060")  # fmt: skip

BAD_CASES = [
    # (overrides or a whole line, reason, detail)
    ({"src": "192.0.2.1 extra"}, "field_count", "expected 14 fields, got 15"),
    ("2 123456789010 eni-1 192.0.2.1", "field_count", "expected 14 fields, got 4"),
    ("", "field_count", "expected 14 fields, got 1"),
    ({"pk": "twenty"}, "bad_number", "packets=twenty"),
    ({"sport": "-5", "pk": "1.5"}, "bad_number", "srcport=-5, packets=1.5"),
    ({"dport": "99999999999"}, "bad_number", "dstport=99999999999"),
    ({"start": "99999999999999"}, "bad_number", "start=99999999999999"),
    ({"dst": "999.1.1.1"}, "bad_address", "dstaddr=999.1.1.1"),
    (
        {"src": "2001:db8::1::2", "dst": "host"},
        "bad_address",
        "srcaddr=2001:db8::1::2, dstaddr=host",
    ),
    ({"dport": "65536"}, "port_range", "dstport=65536"),
    ({"proto": "256"}, "protocol_range", "protocol=256"),
    ({"start": "1700000061"}, "start_after_end", "start=1700000061 > end=1700000060"),
    # failing several checks: the first reason in the checking order, with its own detail
    ({"dport": "65536", "proto": "256"}, "port_range", "dstport=65536"),
    ({"proto": "256", "start": "1700000061"}, "protocol_range", "protocol=256"),
    ({"dst": "host", "dport": "65536"}, "bad_address", "dstaddr=host"),
]


def _bad_line(case: dict[str, str] | str) -> str:
    return case if isinstance(case, str) else V2_OK.format(**{**GOOD, **case})


def test_each_bad_input_kind_is_quarantined(spark: SparkSession) -> None:
    lines = [V2_OK.format(**GOOD)] + [_bad_line(c) for c, _, _ in BAD_CASES]
    parsed = parse_flow_lines(lines_df(spark, lines), DEFAULT_FORMAT)
    valid = filter_valid_flows(parsed).collect()
    assert [(r.srcaddr, r.dstaddr, r.srcport, r.origin_offset) for r in valid] == [
        ("192.0.2.1", "2001:db8::2", 443, "100")
    ]
    quarantined = to_quarantine_rows(parsed)
    assert quarantined.schema.names == QUARANTINE_SCHEMA.names
    rows = quarantined.collect()
    got = {r.origin_offset: (r.reason, r.detail, r.raw) for r in rows}
    expected = {
        str(101 + i): (reason, detail, _bad_line(case))
        for i, (case, reason, detail) in enumerate(BAD_CASES)
    }
    assert got == expected
    # provenance: the record and the line's index in it (lines_df: offset 100 + i, sub i)
    assert sorted((r.origin, r.origin_offset, r.origin_sub, r.arrival_time) for r in rows) == [
        (ORIGIN, str(101 + i), 1 + i, ARRIVAL) for i in range(len(BAD_CASES))
    ]
    assert all(r.quarantined_at is not None for r in rows)
    # the raw text stays on quarantined rows only (a valid row is all in its typed columns)
    raw = {r.origin_offset: r.line for r in parsed.select("origin_offset", "line").collect()}
    assert raw == {"100": None, **{k: v[2] for k, v in expected.items()}}


# header-mode lines: (origin, offset, sub, arrival, line, the line's own header)
HEADER_ROWS = [
    (ORIGIN, "2", 0, ARRIVAL, "10.0.0.1 22", "srcaddr dstport"),
    (ORIGIN, "3", 0, ARRIVAL, "22 10.0.0.1 17", "${dstport} ${srcaddr} ${protocol}"),
    (ORIGIN, "4", 0, ARRIVAL, "22 10.0.0.1", "dstport srcaddr protocol"),
    (ORIGIN, "5", 0, ARRIVAL, "10.0.0.1 x", "srcaddr dst-ip"),
    (ORIGIN, "6", 0, ARRIVAL, "- NODATA", "srcaddr log-status"),
    (ORIGIN, "7", 0, ARRIVAL, "2001:DB8::1 443", "srcaddr dstport"),
    (ORIGIN, "8", 0, ARRIVAL, "10.0.0.9 80", None),
]


def test_header_mode_uses_each_rows_own_format(spark: SparkSession) -> None:
    rows = HEADER_ROWS[:5]
    schema = StructType([*LINE_SCHEMA.fields, StructField("log_format", StringType())])
    df = spark.createDataFrame(rows, schema)
    got = {
        r.origin_offset: (r.srcaddr, r.dstport, r.protocol, r.is_traffic, r.quarantine_reason)
        for r in parse_flow_lines_with_header(df).collect()
    }
    assert got == {
        "2": ("10.0.0.1", 22, None, True, None),
        "3": ("10.0.0.1", 22, 17, True, None),
        "4": ("10.0.0.1", 22, None, True, "field_count"),
        "5": ("10.0.0.1", None, None, True, "unknown_field"),
        "6": (None, None, None, False, None),
    }


@pytest.mark.parametrize(
    "headers",
    [
        ["srcaddr dstport", "${dstport} ${srcaddr} ${protocol}", "dstport srcaddr protocol",
         "srcaddr dst-ip", "srcaddr log-status"],
        ["srcaddr dstport", "${dstport} ${srcaddr} ${protocol}", "dstport srcaddr protocol",
         "srcaddr dst-ip", "srcaddr log-status", None],
        ["srcaddr dstport", None],  # a null header: the rest go through the per-row path
    ],
)  # fmt: skip
def test_header_mode_with_known_headers_gives_the_same_rows(
    spark: SparkSession, headers: list[str]
) -> None:
    rows = HEADER_ROWS
    schema = StructType([*LINE_SCHEMA.fields, StructField("log_format", StringType())])
    df = spark.createDataFrame(rows, schema)
    fast = parse_flow_lines_by_format(df, headers)
    assert fast.columns == parse_flow_lines_with_header(df).columns

    def key(r: Row) -> str:
        return r.origin_offset

    assert sorted(fast.collect(), key=key) == sorted(
        parse_flow_lines_with_header(df).collect(), key=key
    )
    got = {r.origin_offset: (r.srcaddr, r.quarantine_reason) for r in fast.collect()}
    assert got["7"] == ("2001:db8::1", None) and got["5"] == ("10.0.0.1", "unknown_field")


def test_header_mode_quarantines_null_and_repeated_headers(spark: SparkSession) -> None:
    schema = StructType([*LINE_SCHEMA.fields, StructField("log_format", StringType())])
    rows = [
        (ORIGIN, "2", 0, ARRIVAL, "10.0.0.9 80", None),
        (ORIGIN, "3", 0, ARRIVAL, "10.0.0.9 10.0.0.8", "srcaddr srcaddr"),
    ]
    parsed = parse_flow_lines_with_header(spark.createDataFrame(rows, schema))
    assert filter_valid_flows(parsed).count() == 0
    got = {r.origin_offset: (r.quarantine_reason, r.quarantine_detail) for r in parsed.collect()}
    assert got == {
        "2": ("field_count", "no format header line"),
        "3": ("unknown_field", "repeated fields in header: srcaddr srcaddr"),
    }


def test_an_empty_format_string_is_an_error_not_the_default(spark: SparkSession) -> None:
    with pytest.raises(FormatError):
        parse_flow_lines(spark.createDataFrame([], LINE_SCHEMA), "")


# ---- property: random formats round-trip ---------------------------------------------

_ipv4 = st.integers(0, 2**32 - 1).map(lambda n: str(ipaddress.IPv4Address(n)))
_ipv6 = st.integers(0, 2**128 - 1).map(lambda n: ipaddress.IPv6Address(n).exploded.upper())
_ident = st.text("abcdefghijklmnopqrstuvwxyz0123456789-:/", min_size=2, max_size=20)
_TOKENS = {
    "int": st.integers(0, 2**31 - 1).map(str),
    "long": st.integers(0, 2**63 - 1).map(str),
    "epoch": st.integers(0, 4_000_000_000).map(str),
    "address": st.one_of(_ipv4, _ipv6),
    "string": _ident.filter(lambda s: s != "-"),
}
_RANGES = {"srcport": 65535, "dstport": 65535, "protocol": 255}


def _token(name: str) -> st.SearchStrategy[str]:
    """A valid token of the field ``name``: a value its rule allows, else one of its kind."""
    rule = RULES_BY_FIELD.get(name)
    if rule is not None:
        documented = st.sampled_from(rule.values)
        if rule.pattern is None:
            return documented
        return documented | st.from_regex(rule.pattern, fullmatch=True)
    if name in _RANGES:
        return st.integers(0, _RANGES[name]).map(str)
    return _TOKENS[FIELDS_BY_NAME[name].kind]


@st.composite
def formats_and_lines(draw: st.DrawFn) -> tuple[list[str], list[list[str]]]:
    names = draw(st.lists(st.sampled_from(list(FIELDS_BY_NAME)), min_size=1, unique=True))
    names = [n for n in names if n not in ("start", "end")]
    # start/end go in as a pair (ordered values); a format of only those two keeps them, as
    # an empty format would silently mean the default one
    tails = [["start", "end"], ["end", "start"]] + ([[]] if names else [])
    names += draw(st.sampled_from(tails))
    rows = []
    for _ in range(draw(st.integers(1, 3))):
        row = []
        for n in names:
            rule = RULES_BY_FIELD.get(n)
            empty = [] if rule is not None and not rule.may_be_empty else [st.just("-")]
            row.append(draw(st.one_of(_token(n), *empty)))
        if "start" in names:
            i, j = names.index("start"), names.index("end")
            if "-" not in (row[i], row[j]):
                lo, hi = sorted((int(row[i]), int(row[j])))
                row[i], row[j] = str(lo), str(hi)
        rows.append(row)
    return names, rows


def _expected(kind: str, token: str) -> Any:
    if token == "-":
        return None
    if kind in ("int", "long"):
        return int(token)
    if kind == "epoch":
        return ts(int(token))
    if kind == "address":
        return canonical_ip_py(token)
    return token


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(case=formats_and_lines())
def test_random_formats_round_trip(
    spark: SparkSession, case: tuple[list[str], list[list[str]]]
) -> None:
    names, rows = case
    got = parse_rows(spark, [" ".join(r) for r in rows], format_string(names))
    assert len(got) == len(rows)
    for parsed, tokens in zip(got, rows, strict=True):
        assert_parsed_as_given(parsed, names, tokens)


def assert_parsed_as_given(parsed: Any, names: list[str], tokens: list[str]) -> None:
    """``parsed`` (a parsed row) is valid and holds exactly the typed values of ``tokens``
    (the fields ``names``, in that order); fields not named are null."""
    assert parsed["quarantine_reason"] is None, (parsed["quarantine_detail"], tokens)
    given_values = dict(zip(names, tokens, strict=True))
    for f in FIELDS:
        token = given_values.get(f.name, "-")
        kind = f.kind if f.name in CORE_FIELD_NAMES else "string"
        assert value_of(parsed, f) == _expected(kind, token), (f.name, token)
        if f.kind == "address":
            assert parsed[f"{f.column}_key"] == (None if token == "-" else ip_key_py(token))


def test_ipv4_mapped_ipv6_text_becomes_a_dotted_quad(spark: SparkSession) -> None:
    (row,) = parse_rows(
        spark, ["::ffff:c000:201 192.0.2.1 2001:DB8::A"], "${srcaddr} ${dstaddr} ${pkt-srcaddr}"
    )
    assert (row["srcaddr"], row["dstaddr"], row["pkt_srcaddr"]) == (
        "192.0.2.1",
        "192.0.2.1",
        "2001:db8::a",
    )
    assert row["srcaddr_key"] == row["dstaddr_key"] == "00000000000000000000ffffc0000201"
