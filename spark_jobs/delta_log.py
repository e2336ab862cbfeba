"""A Delta table's latest version and properties (:func:`table_state`) and the files one
commit added (:func:`commit_files`), read from its log without a Spark job; used by the batch
plan and the Kafka publication (sinks) and the ownership freshness (sources)."""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from py4j.java_gateway import JavaClass
from py4j.protocol import Py4JError, Py4JJavaError, Py4JNetworkError
from pyspark.sql import SparkSession

log = logging.getLogger("dredge.delta")


VERSIONS_FALLBACK = "table versions come from history()/detail(), which run Spark jobs every batch"
FILES_FALLBACK = "the Kafka messages are computed from the batch's attribution again"


@dataclass(frozen=True)
class TableState:
    """A Delta table's latest committed version, its table properties and, when the log
    records it, how many data files it holds (all at that version)."""

    version: int
    properties: dict[str, str]
    files: int | None = None


def table_state(spark: SparkSession, path: str) -> TableState | None:
    """The latest version of the Delta table at ``path`` and its properties, or None when
    ``path`` holds no Delta table.

    Read from one snapshot of the table's log through Delta's ``DeltaLog`` (it lists the log
    from the last checkpoint and takes the metadata from the latest checksum file, which
    Delta writes with every commit): no Spark job, and version and properties always
    agree. ``history(1)`` and ``detail()``, the public way, run five Spark jobs between them,
    a noticeable share of a small micro-batch. Where that JVM API is not there (a Delta build
    that renames it or changes ``update``'s arguments, e.g. Databricks' own; Spark Connect,
    which has no py4j), the public way is used and a warning says so once.
    """
    try:
        return _snapshot_state(spark, path)
    except Py4JJavaError:
        raise  # the JVM API is there and failed: a real error (storage, corrupt log)
    except (_DeltaLogMissingError, Py4JError, AttributeError) as exc:  # not this build's API
        if isinstance(exc, Py4JNetworkError):
            raise
        _warn_fallback(exc)
        return _public_state(spark, path)


_FALLBACK_WARNED: list[str] = []  # what has fallen back (each said once)


def _warn_fallback(exc: BaseException, instead: str = VERSIONS_FALLBACK) -> None:
    if instead not in _FALLBACK_WARNED:
        _FALLBACK_WARNED.append(instead)
        log.warning(
            "Delta's DeltaLog API is not usable here (%s: %s); %s",
            type(exc).__name__,
            str(exc)[:200],
            instead,
        )


class _DeltaLogMissingError(Exception):
    """The JVM has no ``org.apache.spark.sql.delta.DeltaLog``."""


def _delta_log(spark: SparkSession, path: str) -> Any:
    jvm = spark._jvm
    delta_log = jvm.org.apache.spark.sql.delta.DeltaLog if jvm is not None else None
    if not isinstance(delta_log, JavaClass):
        raise _DeltaLogMissingError
    return delta_log.forTable(spark._jsparkSession, path)


def _snapshot(log: Any) -> Any:
    """The log's latest snapshot: update(stalenessAcceptable=false, <default>, <default>)
    lists the log for new commits."""
    defaults = (getattr(log, f"update$default${i}")() for i in (2, 3))
    return log.update(False, *defaults)


def _snapshot_state(spark: SparkSession, path: str) -> TableState | None:
    snapshot = _snapshot(_delta_log(spark, path))
    version = int(snapshot.version())
    if version < 0:
        return None
    metadata = json.loads(snapshot.metadata().json())["metaData"]
    # the version's checksum file (numOfFilesIfKnown would run jobs to validate it)
    checksum = snapshot.checksumOpt()
    files = int(checksum.get().numFiles()) if checksum.isDefined() else None
    return TableState(version, dict(metadata.get("configuration") or {}), files)


def _public_state(spark: SparkSession, path: str) -> TableState | None:
    from delta.tables import DeltaTable

    if not DeltaTable.isDeltaTable(spark, path):
        return None
    table = DeltaTable.forPath(spark, path)

    def latest() -> int:
        return int(table.history(1).collect()[0]["version"])

    # properties before the version: a newer version's properties are never paired with
    # older data (freshness must not lead the rows it describes); the file count only when
    # no commit came between (a count of another version could skip rows that are there)
    before = latest()
    row = table.detail().select("properties", "numFiles").first()
    version = latest()
    properties = dict(row["properties"] or {}) if row else {}
    files = row["numFiles"] if row is not None and before == version else None
    return TableState(version, properties, None if files is None else int(files))


def commit_files(spark: SparkSession, path: str, since: int, marker: str) -> list[str] | None:
    """The data files that the commit carrying ``marker`` (its ``userMetadata``) added to the
    Delta table at ``path``, looked for among the commits after version ``since``: absolute
    paths, for a plain Parquet read of exactly the rows that commit wrote.

    Read from the log's commit files through ``DeltaLog.getChanges`` (no Spark job). None
    when the rows cannot be read that way: no usable JVM API (as in :func:`table_state`), a
    table with column mapping (its Parquet column names are not the table's) or a file with
    a deletion vector. Raises ``LookupError`` when no commit after ``since`` carries the
    marker.
    """
    try:
        commits = _commits_after(spark, path, since)
    except Py4JJavaError:
        raise
    except (_DeltaLogMissingError, Py4JError, AttributeError) as exc:
        if isinstance(exc, Py4JNetworkError):
            raise
        _warn_fallback(exc, FILES_FALLBACK)
        return None
    if commits is None:
        return None
    for actions in commits:
        info: dict[str, Any] = next((a["commitInfo"] for a in actions if "commitInfo" in a), {})
        if info.get("userMetadata") != marker:
            continue
        adds = [a["add"] for a in actions if "add" in a]
        if any(add.get("deletionVector") for add in adds):
            return None
        return [_absolute(path, add["path"]) for add in adds]
    raise LookupError(f"no commit of {path} after version {since} carries {marker}")


def _commits_after(spark: SparkSession, path: str, since: int) -> list[list[dict[str, Any]]] | None:
    """The actions of every commit after ``since``, in version order; None for a table
    with column mapping."""
    log = _delta_log(spark, path)
    metadata = json.loads(_snapshot(log).metadata().json())["metaData"]
    mapping = (metadata.get("configuration") or {}).get("delta.columnMapping.mode", "none")
    if mapping != "none":
        return None
    jvm: Any = spark._jvm
    found = log.getChanges(since + 1, jvm.scala.Option.empty(), False)
    commits = []
    while found.hasNext():
        actions = found.next()._2()
        commits.append([json.loads(actions.apply(i).json()) for i in range(actions.size())])
    return commits


_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


def _absolute(table: str, file: str) -> str:
    """A log's ``add.path`` (URI-encoded, relative to the table unless absolute) as a path
    Spark reads."""
    if _SCHEME.match(file) or file.startswith("/"):
        return unquote(file)
    return f"{table.rstrip('/')}/{unquote(file)}"
