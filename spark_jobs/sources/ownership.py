"""Readers for the ownership dimension: the Delta tables, inventory snapshot files, CIDR docs.

Freshness lives in the ownership table's own properties (``dredge.freshness``, ISO-8601 UTC),
written by :mod:`spark_jobs.sinks.ownership` right after each MERGE. Reading it loads only the
Delta snapshot metadata (``DESCRIBE DETAIL``; no data files are scanned and the log replay is
cached by Delta between calls), so the enrichment job can afford it every micro-batch. The
marker can lag the data (MERGE committed, property not yet) but never lead it; re-applying the
same observation is a no-op plan, so a lag is harmless.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from spark_jobs.delta_log import table_state
from spark_jobs.transforms.ip import cidr_key_py
from spark_jobs.transforms.ownership import CIDR_LABEL_SCHEMA, OWNER_COLUMNS, Observation

FRESHNESS_PROPERTY = "dredge.freshness"
FAILED_SCOPES_PROPERTY = "dredge.failed_scopes"
SCOPE_FRESHNESS_PROPERTY = "dredge.scope_freshness"  # JSON {"account/region": ISO time}
SNAPSHOT_FIELDS = ("observed_at", "account_id", "region", "ip", *OWNER_COLUMNS)
_SNAPSHOT_SCHEMA = T.StructType(
    [T.StructField(c, T.StringType()) for c in dict.fromkeys(SNAPSHOT_FIELDS)]
    + [T.StructField("scope_only", T.StringType())]
)
LabelRow = tuple[str, int, str, str, str | None, str | None, str]
INTERNET_LABELS = ("0.0.0.0/0", "::/0")


class SnapshotError(ValueError):
    """A snapshot file breaks the contract (mixed or missing observed_at, unknown format)."""


def read_ownership(spark: SparkSession, path: str) -> DataFrame:
    """The ownership intervals table (see ``OWNERSHIP_COLUMNS``)."""
    return spark.read.format("delta").load(path)


def read_cidr_labels(spark: SparkSession, path: str) -> DataFrame:
    """The CIDR-label table (see ``CIDR_LABEL_SCHEMA``)."""
    return spark.read.format("delta").load(path)


def read_table_properties(spark: SparkSession, path: str) -> dict[str, str] | None:
    """The Delta table's properties, or None when ``path`` holds no Delta table."""
    state = table_state(spark, path)
    return state.properties if state else None


def parse_time(text: str) -> datetime:
    """ISO-8601 (``Z`` or offset; naive means UTC) -> aware UTC datetime."""
    value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC)


def format_time(value: datetime) -> str:
    """Aware datetime -> ISO-8601 UTC with microseconds and a ``Z``."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def read_freshness(spark: SparkSession, path: str) -> datetime | None:
    """Time of the latest observation applied to the ownership table (UTC), None if never."""
    return freshness_of(read_table_properties(spark, path) or {})


def freshness_of(props: dict[str, str]) -> datetime | None:
    """The freshness in a table-property dict (see :func:`read_table_properties`)."""
    value = props.get(FRESHNESS_PROPERTY)
    return parse_time(value) if value else None


def scope_freshness_of(props: dict[str, str]) -> dict[str, datetime]:
    """Per scope (``"account/region"``), the latest observation that covered it."""
    text = props.get(SCOPE_FRESHNESS_PROPERTY)
    return {k: parse_time(v) for k, v in json.loads(text).items()} if text else {}


# ---- snapshot files ---------------------------------------------------------------------------


def snapshot_format(path: str) -> str:
    """``json`` for .jsonl/.json/.ndjson, ``csv`` for .csv."""
    ext = os.path.splitext(path)[1].lower()
    if ext in (".jsonl", ".json", ".ndjson"):
        return "json"
    if ext == ".csv":
        return "csv"
    raise SnapshotError(f"{path}: unknown snapshot format (expected .jsonl, .json or .csv)")


def peek_observed_at(path: str) -> datetime:
    """The ``observed_at`` of a snapshot file, from its first data line (no Spark)."""
    with open(path, newline="", encoding="utf-8") as fh:
        if snapshot_format(path) == "csv":
            first: dict[str, Any] | None = next(csv.DictReader(fh), None)
        else:
            line = next((ln for ln in fh if ln.strip()), None)
            first = json.loads(line) if line else None
    if not first or not first.get("observed_at"):
        raise SnapshotError(f"{path}: empty or first line without observed_at")
    return parse_time(str(first["observed_at"]))


def list_snapshot_files(path: str) -> list[str]:
    """``path`` itself, or the snapshot files directly inside a directory (sorted)."""
    if not os.path.isdir(path):
        return [path]
    names = sorted(os.listdir(path))
    exts = (".jsonl", ".json", ".ndjson", ".csv")
    return [os.path.join(path, n) for n in names if n.lower().endswith(exts)]


def _read_snapshot_df(spark: SparkSession, paths: Sequence[str]) -> DataFrame:
    fmt = snapshot_format(paths[0])
    if any(snapshot_format(p) != fmt for p in paths):
        raise SnapshotError(f"files of one observation must share a format: {list(paths)}")
    if fmt == "json":
        df = spark.read.schema(_SNAPSHOT_SCHEMA).json(list(paths))
    else:  # every CSV column is text; optional columns (scope_only) may be absent
        raw = spark.read.option("header", "true").csv(list(paths))
        df = raw.select(
            *[
                F.col(f.name) if f.name in raw.columns else F.lit(None).cast("string").alias(f.name)
                for f in _SNAPSHOT_SCHEMA.fields
            ],
            "_metadata",
        )
    return df.withColumn("source", F.concat(F.lit("snapshot:"), F.col("_metadata.file_name")))


def read_snapshot_observation(spark: SparkSession, paths: Sequence[str]) -> Observation:
    """One observation from snapshot files that share one ``observed_at``.

    Covered scopes are the (account_id, region) pairs present, including ``scope_only`` lines.
    One small aggregate is collected to learn the time and scopes (control plane).
    """
    df = _read_snapshot_df(spark, paths)
    meta = df.agg(
        F.collect_set("observed_at").alias("times"),
        F.collect_set(F.struct("account_id", "region")).alias("scopes"),
    ).first()
    times = {parse_time(t) for t in (meta["times"] if meta else [])}
    if len(times) != 1:
        raise SnapshotError(f"{list(paths)}: expected one observed_at, found {sorted(times)}")
    scopes = tuple(sorted((s["account_id"], s["region"]) for s in meta["scopes"]))  # type: ignore[index]
    is_scope_only = F.lower(F.coalesce(F.col("scope_only"), F.lit("false"))) == "true"
    rows_df = df.filter(~is_scope_only).select("ip", *OWNER_COLUMNS, "source")
    names = ",".join(os.path.basename(p) for p in paths)
    return Observation(times.pop(), rows_df, scopes, label=f"snapshot:{names}")


# ---- CIDR labels ------------------------------------------------------------------------------


def label_row(
    cidr: str, kind: str, service: str | None, region: str | None, label: str
) -> LabelRow:
    """One CIDR-label row with its prefix length and key in the 128-bit space."""
    prefix_len, prefix_key = cidr_key_py(cidr)
    return (cidr, prefix_len, prefix_key, kind, service, region, label)


def labels_from_ip_ranges(doc: dict[str, Any]) -> list[LabelRow]:
    """AWS ``ip-ranges.json`` -> labels, one per prefix.

    A prefix is listed once per service, always including the umbrella ``AMAZON``; the most
    specific service wins (then alphabetical), so each CIDR maps to exactly one label.
    """
    best: dict[tuple[str, str], tuple[bool, str, str, str]] = {}
    for entries, key in (
        (doc.get("prefixes", []), "ip_prefix"),
        (doc.get("ipv6_prefixes", []), "ipv6_prefix"),
    ):
        for e in entries:
            cidr, service, region = e[key], e.get("service", "AMAZON"), e.get("region", "")
            rank = (service == "AMAZON", service, region, cidr)
            if (cidr, region) not in best or rank < best[(cidr, region)]:
                best[(cidr, region)] = rank
    by_cidr: dict[str, tuple[bool, str, str, str]] = {}
    for rank in best.values():
        if rank[3] not in by_cidr or rank < by_cidr[rank[3]]:
            by_cidr[rank[3]] = rank
    return [
        label_row(cidr, "aws_service", svc, region, f"aws:{svc}:{region}")
        for cidr, (_, svc, region, _) in sorted(by_cidr.items())
    ]


def read_ip_ranges(path: str) -> list[LabelRow]:
    """Label rows from an ``ip-ranges.json`` file."""
    with open(path, encoding="utf-8") as fh:
        return labels_from_ip_ranges(json.load(fh))


def labels_from_vpc_doc(doc: dict[str, Any]) -> list[LabelRow]:
    """``{"vpcs": [{vpc_id, region, cidrs: [...] or cidr}], "subnets": [{subnet_id, region,
    cidr}]}`` (one row per VPC with a ``cidrs`` list, or one row per VPC CIDR with ``cidr``)."""
    rows = [
        label_row(c, "vpc", None, v.get("region"), v["vpc_id"])
        for v in doc.get("vpcs", [])
        for c in [*v.get("cidrs", []), *([v["cidr"]] if v.get("cidr") else [])]
    ]
    rows += [
        label_row(s["cidr"], "subnet", None, s.get("region"), s["subnet_id"])
        for s in doc.get("subnets", [])
    ]
    return rows


def read_vpc_cidrs(path: str) -> list[LabelRow]:
    """Label rows from a VPC/subnet CIDR JSON file (format of :func:`labels_from_vpc_doc`)."""
    with open(path, encoding="utf-8") as fh:
        return labels_from_vpc_doc(json.load(fh))


def internet_labels() -> list[LabelRow]:
    """Catch-all rows: anything no longer prefix labels is ``internet``."""
    return [label_row(c, "internet", None, None, "internet") for c in INTERNET_LABELS]


def cidr_labels_df(spark: SparkSession, rows: Sequence[LabelRow]) -> DataFrame:
    """Label rows -> DataFrame in the CIDR-label schema, one row per (cidr, kind, label)."""
    unique = sorted(set(rows), key=lambda r: (r[1], r[2], r[3], r[6]))
    return spark.createDataFrame(unique, CIDR_LABEL_SCHEMA)
