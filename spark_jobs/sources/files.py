"""Flow-log files (S3 delivery, local copies) for backfill and replay, batch or streaming.

Three layouts, each read from a folder (searched recursively) or a file, local or ``s3://``:

* text flow-log files (``.log.gz`` or plain): the first line names the fields (``version
  account-id ...``); it becomes the ``log_format`` of every line of that file, so one folder
  may mix formats. Parse with :func:`~spark_jobs.transforms.parse.parse_flow_lines_with_header`.
* AWS's Parquet delivery: columns are the field names with ``-`` -> ``_``; each row is turned
  back into a flow line so it goes through the same checks and quarantine as text.
* files of CloudWatch Logs subscription envelopes, one JSON envelope per line; decoded with
  the same JVM path as Kinesis records.

Provenance: ``origin = "file:<path>"``, ``origin_offset`` = the line number in the file
(1-based; the header is line 1) or the Parquet row number (1-based), ``arrival_time`` = the
file's modification time. Streaming readers are plain file sources: run them with
``trigger(availableNow=True)`` and a checkpoint, and a second run reads nothing new.
Text files are read whole (``wholetext``) to number their lines; AWS caps a delivered file at
a few tens of MiB uncompressed, which fits in a task.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from spark_jobs.schemas import FIELDS, PARQUET_FLOW_SCHEMA
from spark_jobs.transforms.decode import explode_payloads

MISSING = "-"
_FILE_OPTIONS = {"recursiveFileLookup": "true"}


def _load(
    spark: SparkSession,
    path: str,
    fmt: str,
    streaming: bool,
    path_glob: str | None,
    options: dict[str, str],
) -> DataFrame:
    opts = dict(_FILE_OPTIONS, **options)
    if path_glob:
        opts["pathGlobFilter"] = path_glob
    if streaming:
        reader = spark.readStream.format(fmt).options(**opts)
        if fmt == "parquet":
            reader = reader.schema(PARQUET_FLOW_SCHEMA)
        return reader.load(path)
    return spark.read.format(fmt).options(**opts).load(path)


def _origin() -> Column:
    # _metadata.file_path is a URI; local paths lose their "file:" scheme, s3:// keeps its own.
    path = F.regexp_replace(F.col("_metadata.file_path"), "^file:(//)?", "")
    return F.concat(F.lit("file:"), path).alias("origin")


def _numbered_lines(whole_df: DataFrame) -> DataFrame:
    """``wholetext`` rows -> (origin, arrival_time, line_no, line) for every non-blank line."""
    # Split on the newline alone: Java splits on one character without a regex (a pattern
    # such as ``\r?\n`` runs the regex engine over every byte of the file); a CRLF file's
    # ``\r`` is cut from each line after.
    split = whole_df.select(
        _origin(),
        F.col("_metadata.file_modification_time").alias("arrival_time"),
        F.split(F.col("value"), "\n").alias("_lines"),
    )
    # The header is taken before the explode: a column computed from ``_lines`` after it
    # would make every exploded row carry (and copy) the whole file's array.
    lines = split.select("*", _without_cr(F.element_at("_lines", 1)).alias("_first"))
    exploded = lines.select(
        "origin",
        "arrival_time",
        "_first",
        F.posexplode("_lines").alias("_pos", "line"),
    ).withColumn("line", _without_cr(F.col("line")))
    return exploded.filter(F.trim("line") != "").select(
        "origin",
        "arrival_time",
        "_first",
        (F.col("_pos") + 1).alias("line_no"),
        "line",
    )


def _without_cr(line: Column) -> Column:
    """``line`` without the carriage return a CRLF file ends it with (the last line's too,
    in a file without a final newline; a carriage return alone becomes a blank line)."""
    return F.when(line.endswith("\r"), line.substr(F.lit(1), F.length(line) - 1)).otherwise(line)


def read_flow_log_text(
    spark: SparkSession,
    path: str,
    *,
    streaming: bool = False,
    path_glob: str | None = None,
    options: dict[str, str] | None = None,
) -> DataFrame:
    """Text flow-log files -> provenance + ``log_format`` (the file's header) + ``line``.

    Args:
        spark: the session.
        path: a file or folder (searched recursively), local or ``s3://``.
        streaming: a streaming file source instead of a batch read.
        path_glob: only files whose name matches, e.g. ``"*.log.gz"``.
        options: extra reader options (e.g. ``maxFilesPerTrigger``).
    """
    whole = _load(
        spark, path, "text", streaming, path_glob, {"wholetext": "true", **(options or {})}
    )
    numbered = _numbered_lines(whole)
    return numbered.filter(F.col("line_no") > 1).select(
        "origin",
        F.col("line_no").cast("string").alias("origin_offset"),
        F.lit(0).alias("origin_sub"),
        "arrival_time",
        F.col("_first").alias("log_format"),
        "line",
    )


def _as_token(column: Column) -> Column:
    text = F.trim(column.cast("string"))
    return F.when(text.isNull() | (text == ""), F.lit(MISSING)).otherwise(text)


def read_flow_log_parquet(
    spark: SparkSession,
    path: str,
    *,
    streaming: bool = False,
    path_glob: str | None = None,
    options: dict[str, str] | None = None,
) -> DataFrame:
    """AWS Parquet flow-log files -> the same shape as :func:`read_flow_log_text`.

    Each row becomes a space-separated line of the fields the files carry (null -> ``-``)
    and ``log_format`` names them, so the usual parser applies. Batch reads use the files'
    own columns; streaming reads use every known field (absent ones read as ``-``).
    """
    raw = _load(spark, path, "parquet", streaming, path_glob, options or {})
    present = [f for f in FIELDS if f.parquet_column in raw.columns]
    return raw.select(
        _origin(),
        (F.col("_metadata.row_index") + 1).cast("string").alias("origin_offset"),
        F.lit(0).alias("origin_sub"),
        F.col("_metadata.file_modification_time").alias("arrival_time"),
        F.lit(" ".join(f.name for f in present)).alias("log_format"),
        F.concat_ws(" ", *(_as_token(F.col(f"`{f.parquet_column}`")) for f in present)).alias(
            "line"
        ),
    )


def read_cloudwatch_envelope_files(
    spark: SparkSession,
    path: str,
    *,
    streaming: bool = False,
    path_glob: str | None = None,
    options: dict[str, str] | None = None,
) -> DataFrame:
    """Files of CloudWatch Logs envelopes (one JSON object per line) -> decoded rows.

    Returns the columns of :func:`~spark_jobs.transforms.decode.decode_records` (use
    ``filter_lines`` / ``to_quarantine`` / ``filter_control`` on it): ``origin_offset`` is the
    envelope's line number, ``origin_sub`` the log-event index, ``raw`` the bad line itself.
    """
    whole = _load(
        spark, path, "text", streaming, path_glob, {"wholetext": "true", **(options or {})}
    )
    payloads = _numbered_lines(whole).select(
        "origin",
        F.col("line_no").cast("string").alias("origin_offset"),
        "arrival_time",
        F.col("line").alias("text"),
        F.lit(None).cast("string").alias("reason"),
        F.lit(None).cast("string").alias("detail"),
        F.lit(None).cast("binary").alias("data"),
    )
    return explode_payloads(payloads, "cloudwatch")
