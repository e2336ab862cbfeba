"""The session factory's settings, without starting a JVM."""

from __future__ import annotations

import pytest

from spark_jobs.config import SparkConfig
from spark_jobs.session import MissingJarsError, session_conf


def test_local_session_uses_project_jars_and_delta(tmp_path, monkeypatch):
    (tmp_path / "delta-spark_4.2_2.13-4.4.0.jar").write_bytes(b"")
    (tmp_path / "spark-sql-kafka-0-10_2.13-4.2.0.jar").write_bytes(b"")
    monkeypatch.setenv("DREDGE_JARS_DIR", str(tmp_path))
    conf = session_conf(SparkConfig(shuffle_partitions=3, conf={"spark.x": "y"}))
    assert conf["spark.jars"].split(",") == [
        str(tmp_path / "delta-spark_4.2_2.13-4.4.0.jar"),
        str(tmp_path / "spark-sql-kafka-0-10_2.13-4.2.0.jar"),
    ]
    assert conf["spark.sql.extensions"] == "io.delta.sql.DeltaSparkSessionExtension"
    assert conf["spark.sql.shuffle.partitions"] == "3"
    assert conf["spark.sql.session.timeZone"] == "UTC"
    assert conf["spark.ui.enabled"] == "false"
    assert conf["spark.python.sql.dataFrameDebugging.enabled"] == "false"  # see session.py
    assert conf["spark.sql.inMemoryColumnarStorage.compressed"] == "false"  # see session.py
    assert conf["spark.x"] == "y"
    assert "spark.jars.packages" not in conf


def test_cluster_platforms_use_the_cluster_jars(tmp_path, monkeypatch):
    monkeypatch.setenv("DREDGE_JARS_DIR", str(tmp_path))  # empty: must not be needed
    for platform in ("emr", "databricks"):
        conf = session_conf(SparkConfig(platform=platform))  # type: ignore[arg-type]
        assert "spark.jars" not in conf
        assert "spark.sql.extensions" not in conf
        assert conf["spark.sql.session.timeZone"] == "UTC"


def test_missing_jars_tell_you_to_run_setup(tmp_path, monkeypatch):
    monkeypatch.setenv("DREDGE_JARS_DIR", str(tmp_path / "none"))
    with pytest.raises(MissingJarsError, match="make setup"):
        session_conf(SparkConfig())


def test_configured_settings_override_the_defaults(tmp_path, monkeypatch):
    monkeypatch.setenv("DREDGE_JARS_DIR", str(tmp_path))
    (tmp_path / "delta.jar").write_bytes(b"")
    tight = {"spark.sql.inMemoryColumnarStorage.compressed": "true"}  # memory over CPU
    for platform in ("local", "emr"):
        conf = session_conf(SparkConfig(platform=platform, conf=tight))  # type: ignore[arg-type]
        assert conf["spark.sql.inMemoryColumnarStorage.compressed"] == "true"
