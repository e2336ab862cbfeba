"""Delta writes for micro-batches: each commit carries a batch marker that a replay looks for
(:func:`write_batch`), so a batch replayed after a crash is written once; and a per-batch
*plan* that pins what a batch read (ownership, pending and label versions, the output tables'
versions, freshness, the batch clock) so that a replay recomputes exactly the same rows;
table versions and properties without a Spark job (:mod:`spark_jobs.delta_log`)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.types import StructType

# re-exported: the batch writer and the tests read table states through this module
from spark_jobs.delta_log import TableState as TableState
from spark_jobs.delta_log import commit_files
from spark_jobs.delta_log import table_state as table_state


def table_exists(spark: SparkSession, path: str) -> bool:
    """True when ``path`` holds a Delta table."""
    from delta.tables import DeltaTable

    return bool(DeltaTable.isDeltaTable(spark, path))


def ensure_table(
    spark: SparkSession,
    path: str,
    schema: StructType,
    partition_by: tuple[str, ...] = (),
    properties: Mapping[str, str] | None = None,
) -> None:
    """Create an empty Delta table with ``schema`` (and table ``properties``, ``delta.*``) if
    none exists at ``path``; an existing table is left as it is. A metadata commit only: no
    empty DataFrame is written (a Spark job)."""
    if table_exists(spark, path):
        return
    from delta.tables import DeltaTable

    builder = DeltaTable.createIfNotExists(spark).location(path).addColumns(schema)
    if partition_by:
        builder = builder.partitionedBy(*partition_by)
    for key, value in (properties or {}).items():
        builder = builder.property(key, value)
    builder.execute()


def existing_table_state(spark: SparkSession, path: str) -> TableState:
    """:func:`table_state` of a table that must be there: an error when there is none."""
    state = table_state(spark, path)
    if state is None:
        raise FileNotFoundError(f"no Delta table at {path}")
    return state


def table_version(spark: SparkSession, path: str, *, missing: int | None = None) -> int:
    """The latest committed version of the Delta table at ``path`` (see :func:`table_state`);
    ``missing`` when there is no table, an error if that is None."""
    if missing is None:
        return existing_table_state(spark, path).version
    state = table_state(spark, path)
    return missing if state is None else state.version


def read_version(spark: SparkSession, path: str, version: int) -> DataFrame:
    """The Delta table at ``path`` as of ``version`` (time travel)."""
    return spark.read.format("delta").option("versionAsOf", version).load(path)


def write_batch(
    df: DataFrame,
    path: str,
    *,
    app_id: str,
    batch_id: int,
    mode: str = "append",
    partition_by: tuple[str, ...] = (),
    since: int,
    first_attempt: bool = False,
) -> bool:
    """Write one micro-batch exactly once. Returns False when the marker check found an
    earlier attempt's commit (nothing written), True when it wrote.

    ``since`` is the table's version when the batch's plan was made (-1: no table yet), so
    every attempt of the batch commits after it. The commit carries a marker
    (``userMetadata``: app id + batch id) and a replay (``first_attempt`` False) looks for
    that marker in the table's history after ``since`` (a Spark job, only on replay). A
    first attempt (its plan made just now) cannot find an earlier write and skips the look.
    (Delta's own ``txnAppId``/``txnVersion`` check would make Delta rebuild the table's
    whole state for every commit.)

    Assumes one writer per ``app_id`` at a time, as a streaming query's checkpoint does, and
    that the batch's plan outlives its outputs (a plan made again pins a later version).
    """
    marker = batch_marker(app_id, batch_id)
    if not first_attempt and marker in _commit_markers(df.sparkSession, path, since):
        return False
    writer = df.write.format("delta").mode(mode).option("mergeSchema", "true")
    writer = writer.option("userMetadata", marker)
    if partition_by:
        writer = writer.partitionBy(*partition_by)
    writer.save(path)
    return True


def written_rows(
    spark: SparkSession, path: str, schema: StructType, *, app_id: str, batch_id: int, since: int
) -> DataFrame | None:
    """The rows that this batch's commit (see :func:`write_batch`) wrote to the table at
    ``path``, read from exactly the files it added (``schema``: the data columns wanted; a
    file holds no partition columns). None when those files cannot be listed here
    (:func:`~spark_jobs.delta_log.commit_files`).

    The files must still be there: a replay after the table was compacted and vacuumed
    past them fails here rather than publish other rows.
    """
    files = commit_files(spark, path, since, batch_marker(app_id, batch_id))
    if files is None:
        return None
    if not files:  # a commit that added no file (Delta commits no empty append at all)
        return spark.createDataFrame([], schema)
    return spark.read.schema(schema).parquet(*files)


def batch_marker(app_id: str, batch_id: int) -> str:
    """The ``userMetadata`` a batch's commit carries."""
    return json.dumps({"dredge_app": app_id, "batch": int(batch_id)}, sort_keys=True)


def _commit_markers(spark: SparkSession, path: str, since: int) -> set[str]:
    """The ``userMetadata`` of every commit of the table at ``path`` after version ``since``
    (Delta's public history)."""
    state = table_state(spark, path)
    if state is None or state.version <= since:
        return set()
    from delta.tables import DeltaTable

    history = DeltaTable.forPath(spark, path).history(state.version - since)
    rows = history.where(f"version > {int(since)}").select("version", "userMetadata").collect()
    versions = {int(r["version"]) for r in rows}
    missing = sorted(set(range(since + 1, state.version + 1)) - versions)
    if missing:
        raise RuntimeError(
            f"cannot tell whether {path} already has this batch: commit {missing[0]} is gone "
            "(log retention); replay it by hand or restore the log"
        )
    return {r["userMetadata"] for r in rows if r["userMetadata"]}


@dataclass(frozen=True)
class BatchPlan:
    """What a batch read, fixed the first time the batch runs."""

    batch_id: int
    ownership_version: int
    pending_version: int
    freshness: str | None
    now: str
    labels_version: int  # CIDR labels version
    # output tables' versions before the batch (-1: no table), see :func:`write_batch`
    enriched_version: int
    quarantine_version: int
    broadcast_owners: bool = False  # ownership small enough to broadcast to every task
    pending_files: int | None = None  # data files at pending_version (None: not known)
    scope_freshness: dict[str, str] = field(default_factory=dict)  # "account/region" -> ISO

    @property
    def scope_freshness_times(self) -> dict[str, datetime]:
        """Per-scope freshness as naive UTC datetimes."""
        return {k: _naive(v) for k, v in self.scope_freshness.items()}

    @property
    def freshness_time(self) -> datetime | None:
        """Freshness as a naive UTC datetime (Spark session time zone is UTC)."""
        return _naive(self.freshness) if self.freshness else None

    @property
    def now_time(self) -> datetime:
        """The batch clock as a naive UTC datetime."""
        return _naive(self.now)


def _naive(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value


def load_or_create_plan(
    folder: str,
    batch_id: int,
    make: Callable[[int], BatchPlan],
    spark: SparkSession | None = None,
) -> BatchPlan:
    """The plan of ``batch_id`` under ``folder``: the saved one on replay, else a new one,
    stored before any output of the batch.

    A local ``folder`` keeps one JSON file per batch (written atomically). A URI (``s3://``,
    ``abfss://``, ``dbfs:/``, ...; checkpoints on EMR/Databricks) keeps the plans in a Delta
    table at ``folder`` instead (needs ``spark``): object stores have no atomic rename, Delta
    commits are atomic on all of them. Only the last :data:`PLANS_KEPT` plans are kept (a
    replay only ever needs the batch after the last committed one; Spark keeps 100 batches
    of offsets by default): a new plan for batch N drops the one of batch N - PLANS_KEPT
    (files), or every PLANS_KEPT batches those older (table).
    """
    if is_uri(folder):
        if spark is None:
            raise ValueError(f"batch plans at {folder} need a SparkSession (Delta table)")
        return _delta_plan(spark, folder, batch_id, make)
    path = os.path.join(folder, f"{batch_id}.json")
    if os.path.exists(path):
        with open(path) as fh:
            return BatchPlan(**json.load(fh))
    plan = make(batch_id)
    os.makedirs(folder, exist_ok=True)
    tmp = f"{path}.tmp"
    with open(tmp, "w") as fh:
        json.dump(asdict(plan), fh)
    os.replace(tmp, path)
    stale = os.path.join(folder, f"{batch_id - PLANS_KEPT}.json")
    if os.path.exists(stale):
        os.remove(stale)
    return plan


def is_uri(path: str) -> bool:
    """True for ``scheme://...`` and ``dbfs:/...`` paths (not a local file path)."""
    return "://" in path or path.startswith("dbfs:")


PLAN_SCHEMA = "batch_id long, plan string"
PLANS_KEPT = 200


def _delta_plan(
    spark: SparkSession, table: str, batch_id: int, make: Callable[[int], BatchPlan]
) -> BatchPlan:
    state = table_state(spark, table)
    if state is not None:
        found = spark.read.format("delta").load(table).where(f"batch_id = {int(batch_id)}").first()
        if found is not None:
            return BatchPlan(**json.loads(found["plan"]))
    plan = make(batch_id)
    row = [(int(batch_id), json.dumps(asdict(plan)))]
    # The read above (at this version or later) found no row: write it with a marker, no
    # check needed. A crash after this commit replays into the read above.
    write_batch(
        spark.createDataFrame(row, PLAN_SCHEMA), table, app_id="dredge-plans", batch_id=batch_id,
        since=state.version if state else -1, first_attempt=True,
    )  # fmt: skip
    if batch_id % PLANS_KEPT == 0 and batch_id >= PLANS_KEPT:
        spark.sql(f"DELETE FROM delta.`{table}` WHERE batch_id < {int(batch_id) - PLANS_KEPT}")
    return plan
