"""Enumerated flow-log fields take only the values AWS writes: every documented value passes,
anything else is quarantined ``bad_value`` with the field and the value in the detail."""

from __future__ import annotations

import re
from datetime import datetime

from pyspark.sql import SparkSession

from spark_jobs.schemas import FIELDS, FIELDS_BY_NAME, LINE_SCHEMA, format_string
from spark_jobs.transforms import flow_values as fv
from spark_jobs.transforms.parse import parse_flow_lines

ARRIVAL = datetime(2024, 5, 1, 12, 0, 0)
FULL_FORMAT = format_string([f.name for f in FIELDS])
# a valid line of every field, v10, an IPv4 TCP flow leaving an outpost for S3
GOOD: dict[str, str] = {
    "version": "10", "account-id": "123456789010", "interface-id": "eni-0a1b",
    "srcaddr": "192.0.2.1", "dstaddr": "198.51.100.7", "srcport": "443", "dstport": "51000",
    "protocol": "6", "packets": "20", "bytes": "4249", "start": "1700000000",
    "end": "1700000060", "action": "ACCEPT", "log-status": "OK", "vpc-id": "vpc-0a1b",
    "subnet-id": "subnet-0a1b", "instance-id": "i-0a1b", "tcp-flags": "19", "type": "IPv4",
    "pkt-srcaddr": "192.0.2.1", "pkt-dstaddr": "198.51.100.7", "region": "us-east-1",
    "az-id": "use1-az1", "sublocation-type": "outpost", "sublocation-id": "op-0a1b",
    "pkt-src-aws-service": "-", "pkt-dst-aws-service": "S3", "flow-direction": "egress",
    "traffic-path": "2", "ecs-cluster-arn": "-", "ecs-cluster-name": "-",
    "ecs-container-instance-arn": "-", "ecs-container-instance-id": "-",
    "ecs-container-id": "-", "ecs-second-container-id": "-", "ecs-service-name": "-",
    "ecs-task-definition-arn": "-", "ecs-task-arn": "-", "ecs-task-id": "-",
    "reject-reason": "-", "resource-id": "-", "encryption-status": "1",
}  # fmt: skip

LENIENT = sorted(r.field for r in fv.VALUE_RULES if not r.is_strict)

# (field, token, expected detail): each is the only wrong token of its line
BAD_VALUES = [
    ("action", "ALLOW", "action=ALLOW"),
    ("action", "accept", "action=accept"),
    ("log-status", "FAILED", "log-status=FAILED"),
    ("log-status", "-", "log-status=-"),
    ("log-status", "ok", "log-status=ok"),
    ("type", "IPv5", "type=IPv5"),
    ("type", "ipv4", "type=ipv4"),
    ("flow-direction", "inbound", "flow-direction=inbound"),
    ("traffic-path", "0", "traffic-path=0"),
    ("traffic-path", "9", "traffic-path=9"),
    ("traffic-path", "08", "traffic-path=08"),
    ("sublocation-type", "datacenter", "sublocation-type=datacenter"),
    ("sublocation-type", "Outpost", "sublocation-type=Outpost"),
    ("pkt-src-aws-service", "s3", "pkt-src-aws-service=s3"),
    ("pkt-dst-aws-service", "AMAZON-S3", "pkt-dst-aws-service=AMAZON-S3"),
    ("pkt-dst-aws-service", "X" * 65, f"pkt-dst-aws-service={'X' * 65}"),
    ("reject-reason", "bpa", "reject-reason=bpa"),
    ("reject-reason", "BPA;1", "reject-reason=BPA;1"),
    ("encryption-status", "4", "encryption-status=4"),
    ("tcp-flags", "256", "tcp-flags=256"),
    ("tcp-flags", "019", "tcp-flags=019"),
    ("version", "1", "version=1"),
    ("version", str(fv.MAX_VERSION + 1), f"version={fv.MAX_VERSION + 1}"),
    ("version", "02", "version=02"),
]


def _line(**tokens: str) -> str:
    return " ".join({**GOOD, **tokens}[f.name] for f in FIELDS)


def _parse(spark: SparkSession, lines: list[str]) -> list[tuple[str | None, str | None]]:
    rows = [("o", str(i), i, ARRIVAL, line) for i, line in enumerate(lines)]
    parsed = parse_flow_lines(spark.createDataFrame(rows, LINE_SCHEMA), FULL_FORMAT)
    got = parsed.select("origin_sub", "quarantine_reason", "quarantine_detail").collect()
    return [(r.quarantine_reason, r.quarantine_detail) for r in sorted(got)]


def _documented_lines() -> list[str]:
    """One line per documented value of every rule, and '-' where the field may be empty."""
    out = []
    for rule in fv.VALUE_RULES:
        tokens = list(rule.values) + (["-"] if rule.may_be_empty else [])
        out += [_line(**{rule.field: t}) for t in tokens]
    return out


def _kw(field: str, token: str) -> dict[str, str]:
    return {field: token}


def test_every_rule_names_a_catalog_field_once() -> None:
    assert all(r.field in FIELDS_BY_NAME for r in fv.VALUE_RULES)
    assert len(fv.RULES_BY_FIELD) == len(fv.VALUE_RULES)
    assert set(GOOD) == set(FIELDS_BY_NAME)


def test_strict_and_lenient_fields() -> None:
    strict = {r.field for r in fv.VALUE_RULES if r.is_strict}
    lenient = {r.field for r in fv.VALUE_RULES if not r.is_strict}
    assert lenient == {"pkt-src-aws-service", "pkt-dst-aws-service", "reject-reason"}
    assert strict == {
        "version", "action", "log-status", "tcp-flags", "type", "sublocation-type",
        "flow-direction", "traffic-path", "encryption-status",
    }  # fmt: skip
    # a lenient field's documented values are of the shape it accepts
    for rule in fv.VALUE_RULES:
        if rule.pattern is not None:
            assert all(re.fullmatch(rule.pattern[1:-1], v) for v in rule.values), rule.field
    assert fv.TCP_FLAGS[0] == "0" and fv.TCP_FLAGS[-1] == "255" and len(fv.TCP_FLAGS) == 256
    newest = max(f.version for f in FIELDS)
    assert [int(v) for v in fv.VERSIONS] == list(range(2, newest + 1))


def test_documented_values_and_empty_fields_pass(spark: SparkSession) -> None:
    lines = [_line(), *_documented_lines()]
    assert _parse(spark, lines) == [(None, None)] * len(lines)


def test_lenient_fields_accept_names_aws_has_not_documented_yet(spark: SparkSession) -> None:
    lines = [_line(**_kw(f, "SOME_FUTURE_SERVICE_2")) for f in LENIENT]
    lines.append(_line(**_kw("reject-reason", "X" * 64)))
    assert _parse(spark, lines) == [(None, None)] * len(lines)


def test_values_outside_a_set_are_bad_value(spark: SparkSession) -> None:
    lines = [_line(**_kw(field, token)) for field, token, _ in BAD_VALUES]
    assert _parse(spark, lines) == [("bad_value", d) for _, _, d in BAD_VALUES]


def test_every_failing_field_is_named(spark: SparkSession) -> None:
    line = _line(action="DROP", type="IPv7", **_kw("traffic-path", "10"))
    assert _parse(spark, [line]) == [("bad_value", "action=DROP, type=IPv7, traffic-path=10")]


def test_a_format_without_log_status_needs_none(spark: SparkSession) -> None:
    rows = [("o", "0", 0, ARRIVAL, "192.0.2.1 ACCEPT"), ("o", "1", 1, ARRIVAL, "192.0.2.1 OK")]
    parsed = parse_flow_lines(spark.createDataFrame(rows, LINE_SCHEMA), "${srcaddr} ${action}")
    got = sorted(parsed.select("origin_sub", "quarantine_reason", "quarantine_detail").collect())
    assert [(r.quarantine_reason, r.quarantine_detail) for r in got] == [
        (None, None),
        ("bad_value", "action=OK"),
    ]


# (line, reason, detail)
SHAPE_CASES = [
    (_line() + " " * fv.MAX_LINE_BYTES, "oversized",
     f"line is {len(_line()) + fv.MAX_LINE_BYTES} bytes (max {fv.MAX_LINE_BYTES})"),
    (_line() + " " * (fv.MAX_LINE_BYTES - len(_line())), None, None),
    (_line().replace(" ", "\t", 1), "bad_separator", "tab between fields"),
    (_line().replace(" ", "  ", 1), "bad_separator", "repeated space between fields"),
    # spacing is reported before a wrong value
    (_line(action="DROP").replace(" ", "  ", 1), "bad_separator", "repeated space between fields"),
]  # fmt: skip


def test_line_size_and_spacing(spark: SparkSession) -> None:
    got = _parse(spark, [line for line, _, _ in SHAPE_CASES])
    assert got == [(reason, detail) for _, reason, detail in SHAPE_CASES]
