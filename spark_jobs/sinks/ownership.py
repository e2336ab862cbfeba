"""Applying observations to the ownership Delta table (SCD2 MERGE) and writing CIDR labels.

One writer at a time is assumed (the refresh job); Delta's optimistic concurrency makes a second
concurrent writer fail rather than corrupt the table. Each apply is two commits: the MERGE,
then the freshness property. If the process dies between them the marker lags, and the next run
re-plans the same observation to an empty change set before moving the marker on.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime

from delta.tables import DeltaTable
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from spark_jobs.sources.ownership import (
    FAILED_SCOPES_PROPERTY,
    FRESHNESS_PROPERTY,
    SCOPE_FRESHNESS_PROPERTY,
    format_time,
    freshness_of,
    read_cidr_labels,
    read_ownership,
    read_table_properties,
    scope_freshness_of,
)
from spark_jobs.transforms.ownership import (
    ACTION_CLOSE,
    ACTION_OPEN,
    CIDR_LABEL_SCHEMA,
    LAST_SEEN,
    OWNERSHIP_COLUMNS,
    OWNERSHIP_SCHEMA,
    SCOPE_SCHEMA,
    Observation,
    plan_ownership_changes,
    to_observed_ips,
)

log = logging.getLogger(__name__)


class StaleObservationError(ValueError):
    """An observation older than the table's freshness: history is never rewritten."""


@dataclass(frozen=True)
class ApplyResult:
    """What one apply did. ``skipped``: the observation equals the freshness (a re-run)."""

    observed_at: datetime
    closed: int
    opened: int
    skipped: bool = False


def ensure_ownership_table(spark: SparkSession, path: str) -> None:
    """Create the empty ownership table at ``path`` if there is none; add the columns a
    table written by an older Dredge lacks (null in its rows: an open interval then differs
    from its next observation, which closes it and opens one with the column filled)."""
    DeltaTable.createIfNotExists(spark).location(path).addColumns(OWNERSHIP_SCHEMA).execute()
    have = set(spark.read.format("delta").load(path).columns)
    missing = [f for f in OWNERSHIP_SCHEMA.fields if f.name not in have]
    if missing:
        added = ", ".join(f"{f.name} {f.dataType.simpleString()}" for f in missing)
        spark.sql(f"ALTER TABLE delta.`{path}` ADD COLUMNS ({added})")
        log.info("ownership table %s: added %s", path, added)


def check_not_stale(observed_at: datetime, freshness: datetime | None, label: str = "") -> bool:
    """True if the observation should be applied, False if it equals ``freshness`` (re-run).

    Raises:
        StaleObservationError: ``observed_at`` is before ``freshness``.
    """
    if freshness is None or observed_at > freshness:
        return True
    if observed_at == freshness:
        return False
    raise StaleObservationError(
        f"observation {label or ''} at {format_time(observed_at)} is older than the ownership "
        f"table's freshness {format_time(freshness)}; a stale snapshot never rewrites history "
        "(re-export it, or apply only newer observations)"
    )


def merge_changes(spark: SparkSession, path: str, changes_df: DataFrame) -> tuple[int, int]:
    """MERGE a change set (see ``plan_ownership_changes``); returns (closed, opened)."""
    target = DeltaTable.forPath(spark, path)
    match = (
        "t.ip_key = s.ip_key AND t.valid_from = s.valid_from AND t.valid_to IS NULL "
        f"AND s.action = '{ACTION_CLOSE}'"
    )
    (
        target.alias("t")
        .merge(changes_df.alias("s"), match)
        .whenMatchedUpdate(set={"valid_to": "s.valid_to", LAST_SEEN: f"s.{LAST_SEEN}"})
        .whenNotMatchedInsert(
            condition=f"s.action = '{ACTION_OPEN}'",
            values={c: f"s.{c}" for c in (*OWNERSHIP_COLUMNS, LAST_SEEN)},
        )
        .execute()
    )
    last = target.history(1).select("operation", "operationMetrics").first()
    if last is None or last["operation"] != "MERGE":
        return 0, 0
    metrics = last["operationMetrics"] or {}
    return int(metrics.get("numTargetRowsUpdated", 0)), int(metrics.get("numTargetRowsInserted", 0))


def record_freshness(
    spark: SparkSession, path: str, obs: Observation, scopes: dict[str, datetime] | None = None
) -> None:
    """Store the observation time, the time of each scope it covered (merged into ``scopes``,
    the per-scope times before it) and the scopes that failed in it, as table properties."""
    failed = ",".join(f"{a}/{r}" for (a, r), _ in obs.failed)
    merged = dict(scopes or {})
    merged.update({f"{a}/{r}": obs.observed_at for a, r in obs.scopes})
    per_scope = json.dumps({k: format_time(v) for k, v in sorted(merged.items())})
    quoted = path.replace("`", "``")
    spark.sql(
        f"ALTER TABLE delta.`{quoted}` SET TBLPROPERTIES ("
        f"'{FRESHNESS_PROPERTY}' = '{format_time(obs.observed_at)}', "
        f"'{SCOPE_FRESHNESS_PROPERTY}' = '{_sql_quote(per_scope)}', "
        f"'{FAILED_SCOPES_PROPERTY}' = '{_sql_quote(failed)}')"
    )


def _sql_quote(text: str) -> str:
    return text.replace("\\", "\\\\").replace("'", "\\'")


def apply_observation(spark: SparkSession, path: str, obs: Observation) -> ApplyResult:
    """Apply one observation to the ownership table at ``path`` (created if absent).

    Raises:
        StaleObservationError: the observation is older than the table's freshness.
    """
    ensure_ownership_table(spark, path)
    props = read_table_properties(spark, path) or {}
    freshness = freshness_of(props)
    scopes = scope_freshness_of(props)
    if not check_not_stale(obs.observed_at, freshness, obs.label):
        log.info("observation %s at %s already applied: no-op", obs.label, obs.observed_at)
        return ApplyResult(obs.observed_at, 0, 0, skipped=True)
    scopes_df = spark.createDataFrame(list(obs.scopes), SCOPE_SCHEMA)
    changes_df = plan_ownership_changes(
        read_ownership(spark, path),
        to_observed_ips(obs.rows_df),
        scopes_df,
        obs.observed_at,
        previous_at=freshness,
        scope_previous=scopes,
    )
    closed, opened = merge_changes(spark, path, changes_df)
    record_freshness(spark, path, obs, scopes)
    log.info(
        "applied %s at %s: %d closed, %d opened, %d scopes covered, %d failed",
        obs.label,
        format_time(obs.observed_at),
        closed,
        opened,
        len(obs.scopes),
        len(obs.failed),
    )
    return ApplyResult(obs.observed_at, closed, opened)


def write_cidr_labels(labels_df: DataFrame, path: str, keep: Column | None = None) -> None:
    """Replace the CIDR-label table at ``path`` with ``labels_df`` in one commit.

    Args:
        labels_df: rows in the CIDR-label schema.
        path: the table.
        keep: existing rows matching it are kept (deduplicated against ``labels_df``): the
            label sources a run did not refresh, or the VPCs of a region that failed. None
            replaces the whole table.
    """
    columns = CIDR_LABEL_SCHEMA.fieldNames()
    out_df = labels_df.withColumn("prefix_len", F.col("prefix_len").cast("int")).select(*columns)
    spark = labels_df.sparkSession
    if keep is not None and DeltaTable.isDeltaTable(spark, path):
        # Delta reads a pinned snapshot, so overwriting the table it was read from is safe
        kept_df = read_cidr_labels(spark, path).filter(keep).select(*columns)
        out_df = out_df.unionByName(kept_df).dropDuplicates()
    out_df.write.format("delta").mode("overwrite").option("overwriteSchema", "true").save(path)
