"""Delta table version, properties and data files read from the log's snapshot without a Spark
job, equal to what the public API (history/detail) says; the public API when the JVM one is not
there."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from pyspark.sql import SparkSession
from spark_probe import spark_jobs_run_by

from spark_jobs import delta_log
from spark_jobs.sinks import delta
from spark_jobs.sources.ownership import read_table_properties


def _set(spark: SparkSession, path: str, **props: str) -> None:
    pairs = ", ".join(f"'{k}' = '{v}'" for k, v in props.items())
    spark.sql(f"ALTER TABLE delta.`{path}` SET TBLPROPERTIES ({pairs})")


def test_version_and_properties_follow_every_commit(spark, tmp_path: Path) -> None:
    path = str(tmp_path / "t")
    spark.range(3).coalesce(1).write.format("delta").save(path)
    assert delta.table_state(spark, path) == delta.TableState(0, {}, files=1)
    spark.range(2).coalesce(1).write.format("delta").mode("append").save(path)
    _set(spark, path, **{"dredge.freshness": "2026-01-01T00:00:00Z"})
    _set(spark, path, **{"dredge.freshness": "2026-01-02T00:00:00Z", "other": "x"})
    state = delta.table_state(spark, path)
    props = {"dredge.freshness": "2026-01-02T00:00:00Z", "other": "x"}
    assert state == delta.TableState(3, props, files=2)
    assert state == delta_log._public_state(spark, path)
    assert delta.table_version(spark, path) == 3
    assert read_table_properties(spark, path) == state.properties
    # overwritten with nothing (as the pending table is once every flow is resolved)
    spark.range(0).write.format("delta").mode("overwrite").save(path)
    assert delta.table_state(spark, path) == delta.TableState(4, props, files=0)
    assert delta_log._public_state(spark, path) == delta.TableState(4, props, files=0)


def test_no_spark_job_where_the_public_api_runs_several(spark, tmp_path: Path) -> None:
    path = str(tmp_path / "t")
    spark.range(3).coalesce(1).write.format("delta").save(path)
    _set(spark, path, a="1")
    fast, fast_jobs = spark_jobs_run_by(spark, lambda: delta.table_state(spark, path))
    public, public_jobs = spark_jobs_run_by(spark, lambda: delta_log._public_state(spark, path))
    assert fast == public == delta.TableState(1, {"a": "1"}, files=1)
    assert fast_jobs == 0
    assert public_jobs >= 2  # the probe sees jobs: history(1) and detail() run some


def test_no_table_is_none_and_has_no_version(spark, tmp_path: Path) -> None:
    missing = str(tmp_path / "nothing-here")
    assert delta.table_state(spark, missing) is None
    assert delta_log._public_state(spark, missing) is None
    assert read_table_properties(spark, missing) is None
    with pytest.raises(FileNotFoundError, match="no Delta table"):
        delta.table_version(spark, missing)
    with pytest.raises(FileNotFoundError, match="no Delta table"):
        delta.existing_table_state(spark, missing)
    assert delta.table_version(spark, missing, missing=-1) == -1
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / "x.txt").write_text("not a table")
    assert delta.table_state(spark, str(tmp_path / "plain")) is None


def test_falls_back_to_the_public_api_when_the_jvm_one_is_missing(
    spark, tmp_path: Path, monkeypatch, caplog
) -> None:
    path = str(tmp_path / "t")
    spark.range(3).coalesce(1).write.format("delta").save(path)
    _set(spark, path, a="2")
    calls: list[str] = []

    def renamed_method(spark_: SparkSession, path_: str):
        calls.append("jvm")
        log = spark_._jvm.org.apache.spark.sql.delta.DeltaLog.forTable(spark_._jsparkSession, path_)
        return log.noSuchUpdate()  # a Delta build whose DeltaLog API differs: Py4JError

    monkeypatch.setattr(delta_log, "_snapshot_state", renamed_method)
    monkeypatch.setattr(delta_log, "_FALLBACK_WARNED", [])
    with caplog.at_level(logging.WARNING, logger="dredge.delta"):
        assert delta.table_state(spark, path) == delta.TableState(1, {"a": "2"}, files=1)
        assert delta.table_state(spark, path) == delta.TableState(1, {"a": "2"}, files=1)
    assert calls == ["jvm", "jvm"]
    warned = [r.getMessage() for r in caplog.records if "DeltaLog API" in r.getMessage()]
    assert len(warned) == 1 and "history()/detail()" in warned[0]  # said once

    def no_py4j(spark_: SparkSession, path_: str):
        raise AttributeError("'SparkSession' object has no attribute '_jvm'")  # Spark Connect

    monkeypatch.setattr(delta_log, "_snapshot_state", no_py4j)
    assert delta.table_state(spark, path) == delta.TableState(1, {"a": "2"}, files=1)

    def no_class(spark_: SparkSession, path_: str):
        raise delta_log._DeltaLogMissingError

    monkeypatch.setattr(delta_log, "_snapshot_state", no_class)
    assert delta.table_state(spark, path) == delta.TableState(1, {"a": "2"}, files=1)


def test_a_real_jvm_error_is_not_hidden_by_the_fallback(spark, tmp_path: Path, monkeypatch) -> None:
    def no_fallback(spark_: SparkSession, path_: str):
        raise AssertionError("fell back on a real error")

    monkeypatch.setattr(delta_log, "_public_state", no_fallback)
    path = tmp_path / "t"
    spark.range(3).write.format("delta").save(str(path))
    _set(spark, str(path), a="1")
    # a corrupt newest commit: the JVM API is there and fails; that must surface
    (path / "_delta_log" / f"{2:020d}.json").write_text("{not json")
    with pytest.raises(Exception) as raised:
        delta.table_state(spark, str(path))
    assert type(raised.value).__name__ == "Py4JJavaError"


def test_ensure_table_commits_an_empty_table_once(spark, tmp_path: Path) -> None:
    path = str(tmp_path / "t")
    schema = spark.range(1).selectExpr("id", "map('k', 'v') AS extra", "'p' AS part").schema
    props = {"delta.dataSkippingStatsColumns": "id"}
    _, jobs = spark_jobs_run_by(
        spark, lambda: delta.ensure_table(spark, path, schema, ("part",), props)
    )
    assert jobs <= 1  # a metadata commit, no empty DataFrame written
    table = spark.read.format("delta").load(path)
    assert table.schema == schema and table.count() == 0
    detail = spark.sql(f"DESCRIBE DETAIL delta.`{path}`").first()
    assert detail.partitionColumns == ["part"] and detail.properties == props
    spark.range(2).coalesce(1).selectExpr(
        "id", "map('k', 'v') AS extra", "'q' AS part"
    ).write.format("delta").mode("append").save(path)
    delta.ensure_table(spark, path, schema, ("part",), {"delta.other": "x"})  # there: untouched
    assert delta.table_state(spark, path) == delta.TableState(1, props, files=1)
