"""The session factory's settings, without starting a JVM."""

from __future__ import annotations

import os

import pytest

from spark_jobs.config import SparkConfig
from spark_jobs.session import MissingJarsError, cores, session_conf


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
    assert conf["spark.sql.maxConcurrentOutputFileWriters"] == "4"  # see session.py
    assert conf["spark.sql.files.minPartitionNum"] == str(4 * (os.cpu_count() or 1))  # local[*]
    assert conf["spark.x"] == "y"
    assert "spark.jars.packages" not in conf


def test_cluster_platforms_use_the_cluster_jars(tmp_path, monkeypatch):
    monkeypatch.setenv("DREDGE_JARS_DIR", str(tmp_path))  # empty: must not be needed
    for platform in ("emr", "databricks"):
        conf = session_conf(SparkConfig(platform=platform))  # type: ignore[arg-type]
        assert "spark.jars" not in conf
        assert "spark.sql.extensions" not in conf
        assert conf["spark.sql.session.timeZone"] == "UTC"
        assert "spark.sql.files.minPartitionNum" not in conf  # the cluster's cores: its own


def test_file_partitions_follow_the_local_masters_cores(tmp_path, monkeypatch):
    monkeypatch.setenv("DREDGE_JARS_DIR", str(tmp_path))
    (tmp_path / "delta.jar").write_bytes(b"")
    for master, slots in (("local[3]", 3), ("local[2,4]", 2), ("local", 1),
                          ("local-cluster[2, 1, 1024]", 2), ("local[*]", os.cpu_count())):  # fmt: skip
        conf = session_conf(SparkConfig(master=master))
        assert conf["spark.sql.files.minPartitionNum"] == str(4 * (slots or 1)), master
    assert cores("spark://host:7077") == 1  # not a local master: no guess
    over = session_conf(SparkConfig(conf={"spark.sql.files.minPartitionNum": "64"}))
    assert over["spark.sql.files.minPartitionNum"] == "64"  # a configured value wins


def test_missing_jars_tell_you_to_run_setup(tmp_path, monkeypatch):
    monkeypatch.setenv("DREDGE_JARS_DIR", str(tmp_path / "none"))
    with pytest.raises(MissingJarsError, match="make setup"):
        session_conf(SparkConfig())


def test_configured_settings_override_the_defaults(tmp_path, monkeypatch):
    monkeypatch.setenv("DREDGE_JARS_DIR", str(tmp_path))
    (tmp_path / "delta.jar").write_bytes(b"")
    tight = {"spark.sql.maxConcurrentOutputFileWriters": "0"}  # memory over CPU
    for platform in ("local", "emr"):
        conf = session_conf(SparkConfig(platform=platform, conf=tight))  # type: ignore[arg-type]
        assert conf["spark.sql.maxConcurrentOutputFileWriters"] == "0"


def test_local_task_jvms_compile_huge_methods(tmp_path, monkeypatch):
    """Whole-stage codegen writes methods past HotSpot's 8,000-byte limit; the JVMs that run
    tasks locally (the driver, local-cluster executors) must be told to compile them, after
    any options the config gives."""
    from spark_jobs.session import JVM_OPTIONS, LOG4J_FILE

    monkeypatch.setenv("DREDGE_JARS_DIR", str(tmp_path))
    (tmp_path / "delta.jar").write_bytes(b"")
    assert JVM_OPTIONS == "-XX:-DontCompileHugeMethods"
    log4j = f"-Dlog4j2.configurationFile={LOG4J_FILE.as_uri()}"
    conf = session_conf(SparkConfig())
    assert conf["spark.driver.extraJavaOptions"] == f"{JVM_OPTIONS} {log4j}"
    assert conf["spark.executor.extraJavaOptions"] == f"{JVM_OPTIONS} {log4j}"
    mine = {"spark.driver.extraJavaOptions": "-Dx=1", "spark.executor.extraJavaOptions": "-Dy=2"}
    conf = session_conf(SparkConfig(conf=mine))
    assert conf["spark.driver.extraJavaOptions"] == f"-Dx=1 {JVM_OPTIONS} {log4j}"
    assert conf["spark.executor.extraJavaOptions"] == f"-Dy=2 {JVM_OPTIONS} {log4j}"


def test_a_local_driver_maps_the_class_archive_set_up_recorded(tmp_path, monkeypatch):
    from spark_jobs.session import CDS_ARCHIVE, CDS_QUIET

    monkeypatch.setenv("DREDGE_JARS_DIR", str(tmp_path))
    (tmp_path / "delta.jar").write_bytes(b"")
    key = "spark.driver.extraJavaOptions"
    assert "SharedArchiveFile" not in session_conf(SparkConfig())[key]  # none recorded
    archive = tmp_path / CDS_ARCHIVE
    archive.write_bytes(b"jsa")
    driver = session_conf(SparkConfig())[key]
    assert driver.endswith(f" -XX:SharedArchiveFile={archive} {CDS_QUIET}")
    assert "SharedArchiveFile" not in session_conf(SparkConfig())["spark.executor.extraJavaOptions"]
    # set-up's own recording run, and a config that names its own archive, are left alone
    for mine in ("-XX:ArchiveClassesAtExit=/tmp/x.jsa", "-XX:SharedArchiveFile=/tmp/y.jsa"):
        conf = session_conf(SparkConfig(conf={key: mine}))
        assert conf[key].count("Archive") == 1 and str(archive) not in conf[key]
    assert "SharedArchiveFile" not in session_conf(SparkConfig(platform="emr")).get(key, "")


def test_local_jvms_log_with_dredges_log4j_file_unless_the_config_names_one(tmp_path, monkeypatch):
    from spark_jobs.session import LOG4J_FILE, local_jvm_options

    assert LOG4J_FILE.name == "log4j2.properties" and LOG4J_FILE.is_file()
    assert local_jvm_options("").split() == [
        "-XX:-DontCompileHugeMethods",
        f"-Dlog4j2.configurationFile={LOG4J_FILE.as_uri()}",
    ]
    own = "-Dlog4j2.configurationFile=file:/etc/mine.properties"
    assert local_jvm_options(own).split() == [own, "-XX:-DontCompileHugeMethods"]
    monkeypatch.setenv("DREDGE_JARS_DIR", str(tmp_path))
    (tmp_path / "delta.jar").write_bytes(b"")
    conf = session_conf(SparkConfig(conf={"spark.log.level": "INFO"}))
    assert conf["spark.log.level"] == "INFO"  # a config's level wins over the WARN default
    assert conf["spark.ui.showConsoleProgress"] == "false"  # no progress bars on stderr


def test_cluster_platforms_leave_jvm_options_to_the_cluster(tmp_path, monkeypatch):
    """On EMR/Databricks the JVMs exist or take the cluster's defaults (which a value set here
    would replace): the deploy files set the option (tests/unit/test_deploy.py)."""
    monkeypatch.setenv("DREDGE_JARS_DIR", str(tmp_path))
    for platform in ("emr", "databricks"):
        conf = session_conf(SparkConfig(platform=platform))  # type: ignore[arg-type]
        assert "spark.driver.extraJavaOptions" not in conf
        assert "spark.executor.extraJavaOptions" not in conf


def test_local_jvms_use_the_local_file_system_set_up_compiled(tmp_path, monkeypatch):
    from spark_jobs.session import LOCAL_FS_CONF, LOCAL_FS_JAR

    monkeypatch.setenv("DREDGE_JARS_DIR", str(tmp_path))
    (tmp_path / "delta.jar").write_bytes(b"")
    keys = ("spark.driver.extraClassPath", "spark.executor.extraClassPath", *LOCAL_FS_CONF)
    assert not set(keys) & set(session_conf(SparkConfig()))  # not compiled: Hadoop's own
    jar = tmp_path / LOCAL_FS_JAR
    jar.parent.mkdir()
    jar.write_bytes(b"PK")
    jar = jar.resolve()
    conf = session_conf(SparkConfig())
    assert conf["spark.driver.extraClassPath"] == conf["spark.executor.extraClassPath"] == str(jar)
    assert conf["spark.hadoop.fs.file.impl"] == "dredge.hadoop.LocalFileSystem"
    assert conf["spark.hadoop.fs.AbstractFileSystem.file.impl"] == "dredge.hadoop.LocalFs"
    assert str(jar) not in conf["spark.jars"]  # on the class path, not loaded as a session jar
    # a configured class path is kept (the jar appended), a configured file system wins
    mine = {"spark.driver.extraClassPath": "/opt/x.jar", "spark.hadoop.fs.file.impl": "my.Fs"}
    conf = session_conf(SparkConfig(conf=mine))
    assert conf["spark.driver.extraClassPath"] == f"/opt/x.jar{os.pathsep}{jar}"
    assert conf["spark.hadoop.fs.file.impl"] == "my.Fs"
    assert not set(keys) & set(session_conf(SparkConfig(platform="emr")))


def test_a_jvm_started_before_the_session_keeps_hadoops_file_system(tmp_path, monkeypatch):
    """Under spark-submit the JVM runs before the session is built, without the jar on its
    class path: naming the class would fail every read and write (the wheel's test runs so)."""
    from pyspark import SparkContext

    from spark_jobs.session import LOCAL_FS_CONF, LOCAL_FS_JAR, launch_conf

    monkeypatch.setenv("DREDGE_JARS_DIR", str(tmp_path))
    (tmp_path / "delta.jar").write_bytes(b"")
    (tmp_path / LOCAL_FS_JAR).parent.mkdir()
    (tmp_path / LOCAL_FS_JAR).write_bytes(b"PK")
    monkeypatch.setattr(SparkContext, "_gateway", None)
    monkeypatch.delenv("PYSPARK_GATEWAY_PORT", raising=False)
    assert set(LOCAL_FS_CONF) <= set(launch_conf(SparkConfig()))  # this process starts it
    monkeypatch.setenv("PYSPARK_GATEWAY_PORT", "40000")
    class_path = ("spark.driver.extraClassPath", "spark.executor.extraClassPath")
    assert not {*LOCAL_FS_CONF, *class_path} & set(launch_conf(SparkConfig()))
    # a class path given to spark-submit stays the one given
    mine = {"spark.executor.extraClassPath": "/opt/x.jar"}
    assert launch_conf(SparkConfig(conf=mine))["spark.executor.extraClassPath"] == "/opt/x.jar"
    monkeypatch.delenv("PYSPARK_GATEWAY_PORT")
    monkeypatch.setattr(SparkContext, "_gateway", object())  # an earlier session started it
    assert not set(LOCAL_FS_CONF) & set(launch_conf(SparkConfig()))
