"""Kinesis records -> flow-log lines, control messages and quarantined records.

Every input record lands as exactly one of: one or more ``line`` rows, one ``control`` row
(a CloudWatch Logs ``CONTROL_MESSAGE``) or one ``bad`` row (quarantine), so for any batch
``records in = distinct records among lines + control + bad``.

Gunzip and UTF-8 decoding run in Python over Arrow batches (``mapInArrow``); the JSON of
CloudWatch envelopes is parsed and exploded in the JVM (``from_json`` + ``posexplode``).
"""

from __future__ import annotations

import functools
import zlib
from collections.abc import Iterator
from typing import Literal

import pyarrow as pa
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import (
    ArrayType,
    BinaryType,
    IntegerType,
    LongType,
    StringType,
    StructField,
    StructType,
)

from spark_jobs.schemas import LINE_SCHEMA, PROVENANCE_COLUMNS

RecordFormat = Literal["cloudwatch", "raw"]
KIND_LINE = "line"
KIND_CONTROL = "control"
KIND_BAD = "bad"
GZIP_MAGIC = b"\x1f\x8b"
# Kinesis caps a record at 10 MiB; a CloudWatch batch decompresses to a few MiB at most.
DEFAULT_MAX_RECORD_BYTES = 10 * 1024 * 1024
DEFAULT_MAX_DECODED_BYTES = 32 * 1024 * 1024
_CORRUPT = "_corrupt_record"

PAYLOAD_SCHEMA = StructType(
    [
        StructField("origin", StringType()),
        StructField("origin_offset", StringType()),
        StructField("arrival_time", LINE_SCHEMA["arrival_time"].dataType),
        StructField("text", StringType()),
        StructField("reason", StringType()),
        StructField("detail", StringType()),
        StructField("data", BinaryType()),
    ]
)
ENVELOPE_SCHEMA = StructType(
    [
        StructField("messageType", StringType()),
        StructField("owner", StringType()),
        StructField("logGroup", StringType()),
        StructField("logStream", StringType()),
        StructField("subscriptionFilters", ArrayType(StringType())),
        StructField(
            "logEvents",
            ArrayType(
                StructType(
                    [
                        StructField("id", StringType()),
                        StructField("timestamp", LongType()),
                        StructField("message", StringType()),
                    ]
                )
            ),
        ),
        StructField(_CORRUPT, StringType()),
    ]
)
# from_json reads the first JSON value of a text and ignores whatever follows it, so
# ``{...} junk`` or two concatenated envelopes would pass as one good envelope. The text is
# therefore parsed inside a wrapper object that ends with a sentinel member: anything after
# the envelope breaks the wrapper and the record is corrupt (one JVM parse, no Python JSON).
_END = "_dredge_end_of_envelope"
_WRAPPED_SCHEMA = StructType(
    [
        StructField("env", StructType([f for f in ENVELOPE_SCHEMA.fields if f.name != _CORRUPT])),
        StructField(_END, IntegerType()),
        StructField(_CORRUPT, StringType()),
    ]
)
DECODED_COLUMNS: tuple[str, ...] = (
    *PROVENANCE_COLUMNS,
    "record_kind",
    "line",
    "reason",
    "detail",
    "raw",
)


def _decode_one(
    data: bytes | None, fmt: RecordFormat, max_record: int, max_decoded: int
) -> tuple[str | None, str | None, str | None]:
    """bytes -> (text, reason, detail); text is None exactly when reason is set."""
    if data is None:
        return None, "empty", "record has no data"
    if len(data) > max_record:
        return None, "oversized", f"record is {len(data)} bytes (max {max_record})"
    if fmt == "cloudwatch" or data[:2] == GZIP_MAGIC:
        payload, reason, detail = _gunzip(data, max_decoded)
        if payload is None:
            return None, reason, detail
    elif len(data) > max_decoded:
        return None, "oversized", f"record is {len(data)} bytes (max {max_decoded})"
    else:
        payload = data
    try:
        return payload.decode("utf-8"), None, None
    except UnicodeDecodeError as exc:
        return None, "bad_utf8", str(exc)


def _gunzip(data: bytes, max_decoded: int) -> tuple[bytes | None, str | None, str | None]:
    """gzip bytes -> (payload, reason, detail), payload None exactly when reason is set.

    Every member of a multi-member stream is inflated (as ``gzip -d`` does; stopping after
    the first would drop the rest silently); zero padding after the last member is ignored,
    any other trailing bytes make the record ``bad_gzip``.
    """
    out = bytearray()
    rest = data
    try:
        while True:
            inflater = zlib.decompressobj(wbits=31)
            out += inflater.decompress(rest, max_decoded + 1 - len(out))
            if len(out) > max_decoded:
                return None, "oversized", f"decompresses to more than {max_decoded} bytes"
            if not inflater.eof:
                return None, "bad_gzip", "truncated gzip stream"
            rest = inflater.unused_data
            if not rest.strip(b"\x00"):
                return bytes(out), None, None
            if rest[:2] != GZIP_MAGIC:
                return None, "bad_gzip", f"{len(rest)} bytes of trailing data after the gzip stream"
    except zlib.error as exc:
        return None, "bad_gzip", str(exc)


def _decode_batches(
    batches: Iterator[pa.RecordBatch], fmt: RecordFormat, max_record: int, max_decoded: int
) -> Iterator[pa.RecordBatch]:
    for batch in batches:
        texts, reasons, details = [], [], []
        for data in batch.column("data").to_pylist():
            text, reason, detail = _decode_one(data, fmt, max_record, max_decoded)
            texts.append(text)
            reasons.append(reason)
            details.append(detail)
        yield pa.RecordBatch.from_arrays(
            [
                batch.column("origin"),
                batch.column("origin_offset"),
                batch.column("arrival_time"),
                pa.array(texts, pa.string()),
                pa.array(reasons, pa.string()),
                pa.array(details, pa.string()),
                batch.column("data"),
            ],
            names=PAYLOAD_SCHEMA.names,
        )


def to_payloads(
    records_df: DataFrame,
    record_format: RecordFormat = "cloudwatch",
    max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES,
    max_decoded_bytes: int = DEFAULT_MAX_DECODED_BYTES,
) -> DataFrame:
    """Kinesis records -> one payload row per record (gunzipped UTF-8 text, or a reason).

    Needs the Kinesis source columns (``stream_name, shard_id, sequence_number,
    approximate_arrival_timestamp, data``). Adds :data:`PAYLOAD_SCHEMA`: provenance,
    ``text`` (null when bad), ``reason``/``detail`` ('bad_gzip', 'bad_utf8', 'oversized',
    'empty') and ``data`` (the record's bytes, kept for the quarantine's ``raw``).
    """
    framed = records_df.select(
        F.concat(F.lit("kinesis:"), "stream_name", F.lit("/"), "shard_id").alias("origin"),
        F.col("sequence_number").alias("origin_offset"),
        F.col("approximate_arrival_timestamp").alias("arrival_time"),
        "data",
    )
    func = functools.partial(
        _decode_batches,
        fmt=record_format,
        max_record=max_record_bytes,
        max_decoded=max_decoded_bytes,
    )
    return framed.mapInArrow(func, PAYLOAD_SCHEMA)


def _record_level(kind: str, reason: Column, detail: Column) -> Column:
    return F.struct(F.lit(kind).alias("kind"), reason.alias("reason"), detail.alias("detail"))


def explode_payloads(payload_df: DataFrame, record_format: RecordFormat) -> DataFrame:
    """Payload rows -> decoded rows: one per flow line, or one per control / bad record.

    Needs :data:`PAYLOAD_SCHEMA` columns. Returns :data:`DECODED_COLUMNS`: provenance,
    ``record_kind`` ('line' | 'control' | 'bad'), ``line`` (line rows), ``reason``,
    ``detail``, ``raw`` (bad rows). ``origin_sub`` is the log-event (or line) index; null on
    record-level rows.
    """
    if record_format == "cloudwatch":
        wrapped = F.concat(F.lit('{"env":'), F.col("text"), F.lit(f',"{_END}":1}}'))
        parsed = F.from_json(
            wrapped, _WRAPPED_SCHEMA, {"mode": "PERMISSIVE", "columnNameOfCorruptRecord": _CORRUPT}
        )
        lines = F.transform(F.col("_json.env.logEvents"), lambda e: e["message"])
        msg_type = F.col("_json.env.messageType")
        is_corrupt = F.col(f"_json.{_CORRUPT}").isNotNull() | F.col(f"_json.{_END}").isNull()
        status = (
            F.when(
                F.col("reason").isNotNull(),
                _record_level(KIND_BAD, F.col("reason"), F.col("detail")),
            )
            .when(
                F.col("_json.env").isNull() | is_corrupt,
                _record_level(KIND_BAD, F.lit("bad_json"), F.lit("not a single JSON object")),
            )
            .when(
                msg_type == "CONTROL_MESSAGE", _record_level(KIND_CONTROL, F.lit(None), F.lit(None))
            )
            .when(
                ~msg_type.eqNullSafe("DATA_MESSAGE"),  # a missing type is not data either
                _record_level(
                    KIND_BAD,
                    F.lit("bad_json"),
                    F.concat(
                        F.lit("unexpected messageType: "), F.coalesce(msg_type, F.lit("null"))
                    ),
                ),
            )
            .when(
                F.coalesce(F.size("lines"), F.lit(-1)) <= 0,
                _record_level(KIND_BAD, F.lit("empty"), F.lit("DATA_MESSAGE without logEvents")),
            )
            .when(
                F.exists("lines", lambda m: m.isNull()),
                _record_level(KIND_BAD, F.lit("bad_json"), F.lit("log event without a message")),
            )
            .otherwise(_record_level(KIND_LINE, F.lit(None), F.lit(None)))
        )
        staged = payload_df.withColumn("_json", parsed).withColumn("lines", lines)
    else:
        split = F.filter(F.split(F.col("text"), "\r?\n"), lambda s: F.trim(s) != "")
        status = (
            F.when(
                F.col("reason").isNotNull(),
                _record_level(KIND_BAD, F.col("reason"), F.col("detail")),
            )
            .when(F.size("lines") == 0, _record_level(KIND_BAD, F.lit("empty"), F.lit("no lines")))
            .otherwise(_record_level(KIND_LINE, F.lit(None), F.lit(None)))
        )
        staged = payload_df.withColumn("lines", split)
    return _explode_lines(staged.withColumn("status", status))


def _explode_lines(staged_df: DataFrame) -> DataFrame:
    kind = F.col("status.kind")
    is_line = kind == KIND_LINE
    one_null = F.array(F.lit(None).cast("string"))
    exploded = staged_df.select(
        "origin",
        "origin_offset",
        "arrival_time",
        "status",
        "data",
        "text",
        F.posexplode(F.when(is_line, F.col("lines")).otherwise(one_null)).alias("pos", "item"),
    )
    # base64 of the bytes as received; text sources (files) have no bytes and keep the line.
    # (Spark's base64 wraps lines MIME-style; the quarantine keeps one unbroken string)
    b64 = F.regexp_replace(F.base64("data"), "[\r\n]", "")
    bad_raw = F.coalesce(b64, F.col("text"), F.lit(""))
    return exploded.select(
        "origin",
        "origin_offset",
        F.when(is_line, F.col("pos")).cast("int").alias("origin_sub"),
        "arrival_time",
        kind.alias("record_kind"),
        F.col("item").alias("line"),
        F.col("status.reason").alias("reason"),
        F.col("status.detail").alias("detail"),
        F.when(kind == KIND_BAD, bad_raw).alias("raw"),
    )


def decode_records(
    records_df: DataFrame,
    record_format: RecordFormat = "cloudwatch",
    max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES,
    max_decoded_bytes: int = DEFAULT_MAX_DECODED_BYTES,
) -> DataFrame:
    """Kinesis records -> decoded rows (:data:`DECODED_COLUMNS`); see :func:`explode_payloads`.

    ``record_format='cloudwatch'``: each record is a gzipped CloudWatch Logs subscription
    envelope. ``'raw'``: each record is one or more newline-separated flow-log lines
    (gzipped or not).
    """
    payloads = to_payloads(records_df, record_format, max_record_bytes, max_decoded_bytes)
    return explode_payloads(payloads, record_format)


def filter_lines(decoded_df: DataFrame) -> DataFrame:
    """Decoded rows -> flow lines: provenance + ``line`` (:data:`LINE_SCHEMA`)."""
    return decoded_df.filter(F.col("record_kind") == KIND_LINE).select(*LINE_SCHEMA.names)


def filter_control(decoded_df: DataFrame) -> DataFrame:
    """Decoded rows -> one row per CONTROL_MESSAGE record (provenance only), for counting."""
    return decoded_df.filter(F.col("record_kind") == KIND_CONTROL).select(*PROVENANCE_COLUMNS)


def to_quarantine(decoded_df: DataFrame) -> DataFrame:
    """Decoded rows -> quarantine rows (:data:`QUARANTINE_SCHEMA`) for the bad records."""
    return decoded_df.filter(F.col("record_kind") == KIND_BAD).select(
        *PROVENANCE_COLUMNS,
        "reason",
        "detail",
        "raw",
        F.current_timestamp().alias("quarantined_at"),
    )
