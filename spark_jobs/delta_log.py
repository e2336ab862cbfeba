"""A Delta table's latest version and properties, read from its log without a Spark job
(:func:`table_state`); used by the batch plan (sinks) and the ownership freshness (sources)."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

from py4j.java_gateway import JavaClass
from py4j.protocol import Py4JError, Py4JJavaError, Py4JNetworkError
from pyspark.sql import SparkSession

log = logging.getLogger("dredge.delta")


@dataclass(frozen=True)
class TableState:
    """A Delta table's latest committed version and its table properties (at that version)."""

    version: int
    properties: dict[str, str]


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


_FALLBACK_WARNED: list[bool] = []


def _warn_fallback(exc: BaseException) -> None:
    if not _FALLBACK_WARNED:
        _FALLBACK_WARNED.append(True)
        log.warning(
            "Delta's DeltaLog API is not usable here (%s: %s); table versions come from "
            "history()/detail(), which run Spark jobs every batch",
            type(exc).__name__,
            str(exc)[:200],
        )


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
