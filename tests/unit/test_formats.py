"""Flow-log format strings and the field catalog (no Spark)."""

from __future__ import annotations

import pytest

from spark_jobs.schemas import (
    CORE_FIELD_NAMES,
    DEFAULT_FORMAT,
    FIELDS,
    FIELDS_BY_NAME,
    PARQUET_FLOW_SCHEMA,
    PARSED_FLOW_SCHEMA,
    QUARANTINE_SCHEMA,
    FormatError,
    format_string,
    parse_format_string,
)

V2 = (
    "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes "
    "start end action log-status"
).split()
BY_VERSION = {
    3: "vpc-id subnet-id instance-id tcp-flags type pkt-srcaddr pkt-dstaddr",
    4: "region az-id sublocation-type sublocation-id",
    5: "pkt-src-aws-service pkt-dst-aws-service flow-direction traffic-path",
    7: (
        "ecs-cluster-arn ecs-cluster-name ecs-container-instance-arn ecs-container-instance-id "
        "ecs-container-id ecs-second-container-id ecs-service-name ecs-task-definition-arn "
        "ecs-task-arn ecs-task-id"
    ),
    8: "reject-reason",
}


def test_default_format_is_the_v2_fields_in_aws_order() -> None:
    assert parse_format_string(DEFAULT_FORMAT) == tuple(V2)
    assert DEFAULT_FORMAT.startswith("${version} ${account-id} ${interface-id}")


@pytest.mark.parametrize("version", sorted(BY_VERSION))
def test_every_field_of_each_version_is_known(version: int) -> None:
    names = BY_VERSION[version].split()
    assert parse_format_string(format_string(names)) == tuple(names)
    assert {FIELDS_BY_NAME[n].version for n in names} == {version}


def test_newest_fields_are_known() -> None:
    assert parse_format_string("${resource-id} ${encryption-status}") == (
        "resource-id",
        "encryption-status",
    )


def test_custom_order_and_subset_are_kept() -> None:
    fmt = "${dstport} ${srcaddr} ${ecs-task-id} ${start}"
    assert parse_format_string(fmt) == ("dstport", "srcaddr", "ecs-task-id", "start")


def test_bare_header_names_and_extra_whitespace() -> None:
    assert parse_format_string("  version\taccount-id  srcaddr \n") == (
        "version",
        "account-id",
        "srcaddr",
    )


@pytest.mark.parametrize(
    ("fmt", "message"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("${version} ${no-such-field}", "unknown flow-log field 'no-such-field'"),
        ("${version} ${version}", "appears twice"),
        ("${version ${srcaddr}", "malformed token"),
        ("${Version}", "unknown flow-log field 'Version'"),
        ("$version", "malformed token"),
    ],
)
def test_bad_formats_raise_clear_errors(fmt: str, message: str) -> None:
    with pytest.raises(FormatError, match=message.replace("(", r"\(")):
        parse_format_string(fmt)


def test_unknown_field_error_lists_the_known_ones() -> None:
    with pytest.raises(FormatError, match="known fields: version, account-id"):
        parse_format_string("${srcaddr} ${dst-addr}")


def test_column_names_and_types() -> None:
    cols = {f.name: (f.column, f.spark_type.simpleString()) for f in FIELDS}
    assert cols["start"] == ("start_time", "timestamp")
    assert cols["end"] == ("end_time", "timestamp")
    assert cols["pkt-srcaddr"] == ("pkt_srcaddr", "string")
    assert cols["packets"] == ("packets", "bigint")
    assert cols["srcport"] == ("srcport", "int")
    assert cols["traffic-path"] == ("traffic_path", "int")
    assert cols["ecs-task-definition-arn"] == ("ecs_task_definition_arn", "string")
    assert len(FIELDS) == len(FIELDS_BY_NAME) == 14 + 7 + 4 + 4 + 10 + 1 + 2


def test_parsed_schema_has_core_fields_an_extra_map_keys_and_provenance() -> None:
    names = PARSED_FLOW_SCHEMA.names
    core = [f.column for f in FIELDS if f.name in CORE_FIELD_NAMES]
    assert core == names[: len(core)]  # in the catalog's order
    assert names[len(core)] == "extra"
    assert PARSED_FLOW_SCHEMA["extra"].dataType.simpleString() == "map<string,string>"
    # v2's fields and the v3-v5 fields queries slice by; the rest live in the map
    assert {f.name for f in FIELDS if f.version == 2} <= CORE_FIELD_NAMES
    assert {"flow-direction", "traffic-path", "pkt-srcaddr", "az-id"} <= CORE_FIELD_NAMES
    assert not {"ecs-task-id", "reject-reason", "sublocation-type"} & CORE_FIELD_NAMES
    assert len(names) <= 36
    for col in ("srcaddr_key", "dstaddr_key", "pkt_srcaddr_key", "pkt_dstaddr_key"):
        assert col in names
    assert names[-6:] == [
        "is_traffic",
        "flow_id",
        "origin",
        "origin_offset",
        "origin_sub",
        "arrival_time",
    ]
    assert QUARANTINE_SCHEMA.names == [
        "origin",
        "origin_offset",
        "origin_sub",
        "arrival_time",
        "reason",
        "detail",
        "raw",
        "quarantined_at",
    ]


def test_parquet_schema_uses_underscored_names_and_epoch_longs() -> None:
    types = {f.name: f.dataType.simpleString() for f in PARQUET_FLOW_SCHEMA.fields}
    assert types["start"] == "bigint"
    assert types["end"] == "bigint"
    assert types["log_status"] == "string"
    assert types["pkt_dst_aws_service"] == "string"
