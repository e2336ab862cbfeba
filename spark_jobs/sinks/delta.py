"""Delta writes for micro-batches: each commit carries a batch marker that a replay looks for
(:func:`write_batch`), so a batch replayed after a crash is written once; and a per-batch
*plan* that pins what a batch read (ownership, pending and label versions, the output tables'
versions, freshness, the batch clock) so that a replay recomputes exactly the same rows;
table versions and properties without a Spark job (:func:`table_state`)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

from py4j.java_gateway import JavaClass
from py4j.protocol import Py4JError, Py4JJavaError
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.types import StructType


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
    none exists at ``path``; an existing table is left as it is."""
    if table_exists(spark, path):
        return
    writer = spark.createDataFrame([], schema).write.format("delta").mode("ignore")
    for key, value in (properties or {}).items():
        writer = writer.option(key, value)
    if partition_by:
        writer = writer.partitionBy(*partition_by)
    writer.save(path)


@dataclass(frozen=True)
class TableState:
    """A Delta table's latest committed version and its table properties (at that version)."""

    version: int
    properties: dict[str, str]


def table_state(spark: SparkSession, path: str) -> TableState | None:
    """The latest version of the Delta table at ``path`` and its properties, or None when
    ``path`` holds no Delta table.

    Read from one snapshot of the table's log through Delta's ``DeltaLog`` (it lists the log
    from the last checkpoint and takes the metadata from the checksum file): no Spark job,
    ~30 ms, and version and properties always agree. ``history(1)`` and ``detail()``, the
    public way, run five Spark jobs between them (0.4 s of every small micro-batch here).
    Where that JVM API is not there (a Delta build that renames it, e.g. Databricks' own),
    the public way is used.
    """
    try:
        return _snapshot_state(spark, path)
    except Py4JJavaError:
        raise  # the JVM API is there and failed: a real error (storage, corrupt log)
    except (_DeltaLogMissingError, Py4JError):  # not this build's API (class or method missing)
        return _public_state(spark, path)


class _DeltaLogMissingError(Exception):
    """The JVM has no ``org.apache.spark.sql.delta.DeltaLog``."""


def _snapshot_state(spark: SparkSession, path: str) -> TableState | None:
    jvm = spark._jvm
    delta_log = jvm.org.apache.spark.sql.delta.DeltaLog if jvm is not None else None
    if not isinstance(delta_log, JavaClass):
        raise _DeltaLogMissingError
    log = delta_log.forTable(spark._jsparkSession, path)
    # update(stalenessAcceptable=false, <default>, <default>): lists the log for new commits
    defaults = (getattr(log, f"update$default${i}")() for i in (2, 3))
    snapshot = log.update(False, *defaults)
    version = int(snapshot.version())
    if version < 0:
        return None
    metadata = json.loads(snapshot.metadata().json())["metaData"]
    return TableState(version, dict(metadata.get("configuration") or {}))


def _public_state(spark: SparkSession, path: str) -> TableState | None:
    from delta.tables import DeltaTable

    if not DeltaTable.isDeltaTable(spark, path):
        return None
    table = DeltaTable.forPath(spark, path)
    # properties before the version: a newer version's properties are never paired with
    # older data (freshness must not lead the rows it describes)
    row = table.detail().select("properties").first()
    properties = dict(row["properties"] or {}) if row else {}
    return TableState(int(table.history(1).collect()[0]["version"]), properties)


def table_version(spark: SparkSession, path: str) -> int:
    """The latest committed version of the Delta table at ``path`` (see :func:`table_state`)."""
    state = table_state(spark, path)
    if state is None:
        raise FileNotFoundError(f"no Delta table at {path}")
    return state.version


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
    since: int | None = None,
    first_attempt: bool = False,
) -> bool:
    """Write one micro-batch exactly once; False when an earlier attempt already wrote it.

    ``since`` is the table's version when the batch's plan was made (-1: no table yet), so
    every attempt of the batch commits after it. With it, the commit carries a marker
    (``userMetadata``: app id + batch id) and a replay (``first_attempt`` False) looks for
    that marker in the commits after ``since`` - read straight from the log, only on replay.
    A first attempt (its plan made just now) cannot find an earlier write and skips the look.
    Without ``since``, Delta's own ``txnAppId``/``txnVersion`` check is used: it makes Delta
    rebuild the table's whole state for every commit (three Spark jobs, ~0.6 s for a small
    table here, more as the table grows).

    Assumes one writer per ``app_id`` at a time, as a streaming query's checkpoint does.
    """
    writer = df.write.format("delta").mode(mode).option("mergeSchema", "true")
    if since is None:
        writer = writer.option("txnAppId", app_id).option("txnVersion", batch_id)
    else:
        marker = batch_marker(app_id, batch_id)
        if not first_attempt and marker in _commit_markers(df.sparkSession, path, since):
            return False
        writer = writer.option("userMetadata", marker)
    if partition_by:
        writer = writer.partitionBy(*partition_by)
    writer.save(path)
    return True


def batch_marker(app_id: str, batch_id: int) -> str:
    """The ``userMetadata`` a batch's commit carries."""
    return json.dumps({"dredge_app": app_id, "batch": int(batch_id)}, sort_keys=True)


def _commit_markers(spark: SparkSession, path: str, since: int) -> set[str]:
    """The ``userMetadata`` of every commit of the table at ``path`` after version ``since``,
    read from the commit files (Hadoop FS on the driver: no Spark job)."""
    state = table_state(spark, path)
    if state is None or state.version <= since:
        return set()
    jvm = spark._jvm
    assert jvm is not None
    conf = spark._jsc.hadoopConfiguration()
    markers = set()
    for version in range(since + 1, state.version + 1):
        commit = jvm.org.apache.hadoop.fs.Path(f"{path.rstrip('/')}/_delta_log/{version:020d}.json")
        fs = commit.getFileSystem(conf)
        if not fs.exists(commit):
            raise RuntimeError(
                f"cannot tell whether {path} already has this batch: commit {version} is gone "
                "(log retention); replay it by hand or restore the log"
            )
        stream = fs.open(commit)
        try:
            text = jvm.org.apache.commons.io.IOUtils.toString(stream, "UTF-8")
        finally:
            stream.close()
        for line in text.splitlines():
            info = json.loads(line).get("commitInfo") if line.strip() else None
            if info and info.get("userMetadata"):
                markers.add(info["userMetadata"])
    return markers


@dataclass(frozen=True)
class BatchPlan:
    """What a batch read, fixed the first time the batch runs."""

    batch_id: int
    ownership_version: int
    pending_version: int
    freshness: str | None
    now: str
    broadcast_owners: bool = False  # ownership small enough to broadcast to every task
    scope_freshness: dict[str, str] = field(default_factory=dict)  # "account/region" -> ISO
    labels_version: int | None = None  # CIDR labels version (None: plans before it was pinned)
    # output tables' versions before the batch (-1: no table; None: plans before they were
    # pinned, whose writes use Delta's txnAppId check instead), see :func:`write_batch`
    enriched_version: int | None = None
    quarantine_version: int | None = None

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
    commits are atomic on all of them.
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
    return plan


def is_uri(path: str) -> bool:
    """True for ``scheme://...`` and ``dbfs:/...`` paths (not a local file path)."""
    return "://" in path or path.startswith("dbfs:")


PLAN_SCHEMA = "batch_id long, plan string"


def _delta_plan(
    spark: SparkSession, table: str, batch_id: int, make: Callable[[int], BatchPlan]
) -> BatchPlan:
    if table_exists(spark, table):
        found = spark.read.format("delta").load(table).where(f"batch_id = {int(batch_id)}").first()
        if found is not None:
            return BatchPlan(**json.loads(found["plan"]))
    plan = make(batch_id)
    row = [(int(batch_id), json.dumps(asdict(plan)))]
    # txnVersion: a crash between this commit and the batch's outputs replays into the read
    # above; a second attempt of the same write is skipped by Delta.
    write_batch(
        spark.createDataFrame(row, PLAN_SCHEMA), table, app_id="dredge-plans", batch_id=batch_id
    )
    return plan
