"""Column contracts: the VPC flow-log field catalog, format strings, and shared schemas.

Every field a flow log can carry, v2 to the newest, is listed once in :data:`FIELDS` in the
order of AWS's "Available fields" table. A field's column name is its flow-log name with
``-`` replaced by ``_`` (AWS's Parquet delivery uses the same names); ``start``/``end`` are
epoch seconds in the text and become the timestamps ``start_time``/``end_time`` once parsed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from pyspark.sql.types import (
    BinaryType,
    BooleanType,
    DataType,
    IntegerType,
    LongType,
    MapType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

FieldKind = Literal["string", "int", "long", "epoch", "address"]

_SPARK_TYPES: dict[str, DataType] = {
    "string": StringType(),
    "int": IntegerType(),
    "long": LongType(),
    "epoch": TimestampType(),
    "address": StringType(),
}
# The physical type in AWS's Parquet delivery (epoch seconds stay INT_64 there).
_PARQUET_TYPES: dict[str, DataType] = {**_SPARK_TYPES, "epoch": LongType()}


class FormatError(ValueError):
    """A flow-log format string is empty, malformed, repeats a field or names an unknown one."""


@dataclass(frozen=True)
class FlowField:
    """One flow-log field: its AWS name, the version that introduced it and its value kind."""

    name: str
    version: int
    kind: FieldKind

    @property
    def column(self) -> str:
        """The parsed column name (``pkt-srcaddr`` -> ``pkt_srcaddr``, ``start`` -> ``start_time``)."""
        if self.kind == "epoch":
            return f"{self.name}_time"
        return self.name.replace("-", "_")

    @property
    def parquet_column(self) -> str:
        """The column name in AWS's Parquet delivery (``start``/``end`` stay as they are)."""
        return self.name.replace("-", "_")

    @property
    def spark_type(self) -> DataType:
        """The type of the parsed column."""
        return _SPARK_TYPES[self.kind]

    @property
    def parquet_type(self) -> DataType:
        """The type of the column in AWS's Parquet delivery."""
        return _PARQUET_TYPES[self.kind]


def _fields(version: int, kind: FieldKind, *names: str) -> tuple[FlowField, ...]:
    return tuple(FlowField(n, version, kind) for n in names)


FIELDS: tuple[FlowField, ...] = (
    *_fields(2, "int", "version"),
    *_fields(2, "string", "account-id", "interface-id"),
    *_fields(2, "address", "srcaddr", "dstaddr"),
    *_fields(2, "int", "srcport", "dstport", "protocol"),
    *_fields(2, "long", "packets", "bytes"),
    *_fields(2, "epoch", "start", "end"),
    *_fields(2, "string", "action", "log-status"),
    *_fields(3, "string", "vpc-id", "subnet-id", "instance-id"),
    *_fields(3, "int", "tcp-flags"),
    *_fields(3, "string", "type"),
    *_fields(3, "address", "pkt-srcaddr", "pkt-dstaddr"),
    *_fields(4, "string", "region", "az-id", "sublocation-type", "sublocation-id"),
    *_fields(5, "string", "pkt-src-aws-service", "pkt-dst-aws-service", "flow-direction"),
    *_fields(5, "int", "traffic-path"),
    *_fields(
        7,
        "string",
        "ecs-cluster-arn",
        "ecs-cluster-name",
        "ecs-container-instance-arn",
        "ecs-container-instance-id",
        "ecs-container-id",
        "ecs-second-container-id",
        "ecs-service-name",
        "ecs-task-definition-arn",
        "ecs-task-arn",
        "ecs-task-id",
    ),
    *_fields(8, "string", "reject-reason"),
    # Newer than v8; the version numbers follow AWS's table as best known (only used for docs
    # and test generation, never for parsing decisions).
    *_fields(9, "string", "resource-id"),
    *_fields(10, "int", "encryption-status"),
)
FIELDS_BY_NAME: dict[str, FlowField] = {f.name: f for f in FIELDS}
# The fields that get a column of their own: v2's, and the v3-v5 fields queries slice by.
# Every other field a format carries is kept as text in the ``extra`` map (null when empty),
# so a row stays narrow whatever the format and nothing a flow log said is lost.
CORE_FIELD_NAMES: frozenset[str] = frozenset(
    {
        *(f.name for f in FIELDS if f.version == 2),
        "vpc-id", "subnet-id", "instance-id", "type", "tcp-flags", "pkt-srcaddr",
        "pkt-dstaddr", "region", "az-id", "flow-direction", "traffic-path",
    }
)  # fmt: skip
CORE_FIELDS: tuple[FlowField, ...] = tuple(f for f in FIELDS if f.name in CORE_FIELD_NAMES)
EXTRA_FIELDS: tuple[FlowField, ...] = tuple(f for f in FIELDS if f.name not in CORE_FIELD_NAMES)
EXTRA_COLUMN = "extra"
ADDRESS_COLUMNS: tuple[str, ...] = tuple(f.column for f in FIELDS if f.kind == "address")
PORT_COLUMNS: tuple[str, ...] = ("srcport", "dstport")

DEFAULT_FIELD_NAMES: tuple[str, ...] = tuple(f.name for f in FIELDS if f.version == 2)
DEFAULT_FORMAT: str = " ".join(f"${{{n}}}" for n in DEFAULT_FIELD_NAMES)

_TOKEN_RE = re.compile(r"^\$\{([^{}]*)\}$|^([a-z0-9-]+)$")


def parse_format_string(log_format: str) -> tuple[str, ...]:
    """``"${version} ${account-id} ..."`` -> ``("version", "account-id", ...)``.

    Bare names (``"version account-id"``, as in the header line of S3 text files) are
    accepted too. Raises :class:`FormatError` naming the offending token for an empty format,
    a malformed token, an unknown field or a repeated field.
    """
    tokens = log_format.split()
    if not tokens:
        raise FormatError("empty flow-log format: name at least one field, e.g. '${srcaddr}'")
    names: list[str] = []
    for token in tokens:
        match = _TOKEN_RE.match(token)
        if match is None:
            raise FormatError(f"malformed token {token!r} in flow-log format: expected ${{name}}")
        name = match.group(1) if match.group(1) is not None else match.group(2)
        if name not in FIELDS_BY_NAME:
            raise FormatError(
                f"unknown flow-log field {name!r}; known fields: {', '.join(FIELDS_BY_NAME)}"
            )
        if name in names:
            raise FormatError(f"flow-log field {name!r} appears twice in the format")
        names.append(name)
    return tuple(names)


def format_string(names: tuple[str, ...] | list[str]) -> str:
    """The inverse of :func:`parse_format_string`: ``("version", ...)`` -> ``"${version} ..."``."""
    return " ".join(f"${{{n}}}" for n in names)


# ---- shared schemas ---------------------------------------------------------------------

KINESIS_RECORD_SCHEMA = StructType(
    [
        StructField("stream_name", StringType()),
        StructField("shard_id", StringType()),
        StructField("sequence_number", StringType()),
        StructField("partition_key", StringType()),
        StructField("approximate_arrival_timestamp", TimestampType()),
        StructField("data", BinaryType()),
    ]
)

PROVENANCE_FIELDS: tuple[StructField, ...] = (
    StructField("origin", StringType()),
    StructField("origin_offset", StringType()),
    StructField("origin_sub", IntegerType()),
    StructField("arrival_time", TimestampType()),
)
PROVENANCE_COLUMNS: tuple[str, ...] = tuple(f.name for f in PROVENANCE_FIELDS)

LINE_SCHEMA = StructType([*PROVENANCE_FIELDS, StructField("line", StringType())])

PARSED_FLOW_SCHEMA = StructType(
    [
        *(StructField(f.column, f.spark_type) for f in CORE_FIELDS),
        StructField(EXTRA_COLUMN, MapType(StringType(), StringType())),
        *(StructField(f"{c}_key", StringType()) for c in ADDRESS_COLUMNS),
        StructField("is_traffic", BooleanType()),
        StructField("flow_id", StringType()),
        *PROVENANCE_FIELDS,
    ]
)

QUARANTINE_SCHEMA = StructType(
    [
        *PROVENANCE_FIELDS,
        StructField("reason", StringType()),
        StructField("detail", StringType()),
        StructField("raw", StringType()),
        StructField("quarantined_at", TimestampType()),
    ]
)

PARQUET_FLOW_SCHEMA = StructType([StructField(f.parquet_column, f.parquet_type) for f in FIELDS])
