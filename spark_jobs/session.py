"""The one SparkSession factory.

``local``: ``local[*]`` with the jars that ``make setup`` fetched into ``.jars/spark``
(Delta, Spark's Kafka connector) handed over as ``spark.jars`` - nothing is resolved from a
repository when a job starts. ``emr`` / ``databricks``: the cluster's own Delta and connectors;
only Dredge's SQL settings are applied.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

from pyspark.sql import SparkSession

from spark_jobs.config import SparkConfig

PROJECT_ROOT = Path(__file__).resolve().parent.parent

DELTA_CONF = {
    "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
    "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
}

# Static settings: read once, when the JVM's Spark starts. Where the session exists before
# the job's code runs (Databricks), the cluster must set them (the bundle's spark_conf).
STATIC_CONF = {
    # Compiled code is cached by its source, 100 classes by default: a micro-batch of the
    # enrichment job (decode, parse, attribution, sinks, Delta's own queries) generates about
    # that many, so each batch would evict the last one's and compile them all again
    # (test_batch_codegen: a repeated batch compiles nothing).
    # Bounded: every class holds memory, and a long-running stream adds a few a minute (the
    # plan clock and each ownership refresh change the attribution's code), oldest evicted.
    "spark.sql.codegen.cache.maxEntries": "500",
}

COMMON_CONF = {
    # Flow-log times are epoch seconds; everything is kept and shown in UTC.
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.sql.streaming.stopActiveRunOnRestart": "true",
    # PySpark records the Python call site of every DataFrame/Column call for error messages:
    # several extra JVM round trips per call while a batch's plan is built. Errors still name
    # the failing expression.
    "spark.python.sql.dataFrameDebugging.enabled": "false",
    # A batch caches its parsed rows once and every output reads them, then releases them:
    # compression would save memory held for one batch at a CPU cost paid by every batch
    # (docs/performance.md). The caches are MEMORY_AND_DISK: a batch larger than memory
    # spills instead of failing.
    "spark.sql.inMemoryColumnarStorage.compressed": "false",
    # The enriched table is partitioned by date and hour, and a micro-batch's rows fall in one
    # or two hours: with a few writers open at once, a task writes each partition's file as
    # its rows come instead of sorting them all by partition first (more partitions than
    # this in one task: it sorts the rest, as Spark does by default).
    "spark.sql.maxConcurrentOutputFileWriters": "4",
}
# Partitions of a file read per local core. Spark packs a read's files into about one
# partition per core, largest files first, and a gzip file cannot be split: with flow-log
# files of very different sizes, one task would parse most of a batch while the other cores
# wait. Several smaller partitions per core even out (bench.settings measures it).
FILE_PARTITIONS_PER_CORE = 4

# HotSpot leaves methods over 8,000 bytes of bytecode to the interpreter (DontCompileHugeMethods),
# and whole-stage codegen writes one method per stage: the parse's projection and the
# attribution's joins make such methods, which would otherwise never be JIT-compiled. A JVM
# start option, so it is given to the processes that run tasks when they start:
# the driver in local mode (it runs the tasks), the executors otherwise (local-cluster here; on
# EMR/Databricks the cluster's settings, see docs/deploying.md). Appended to a configured value.
JVM_OPTIONS = "-XX:-DontCompileHugeMethods"
JVM_OPTION_KEYS = ("spark.driver.extraJavaOptions", "spark.executor.extraJavaOptions")
# The local JVMs' logging: WARN and up, without the warnings that every run prints and no user
# can act on (each one is explained in the file). A log4j2 file named in the configured
# options wins; on EMR/Databricks the cluster's logging applies.
LOG4J_FILE = Path(__file__).resolve().with_name("log4j2.properties")
LOG4J_OPTION = "-Dlog4j2.configurationFile="
# A local driver maps the classes it loads at start from a class-data archive that set-up
# records (scripts/jvm_archive.py) instead of loading and verifying them from the jars: a cold
# start (a restarted stream, a backfill) is shorter. An archive that does not match the JVM
# or the classpath is ignored by the JVM, which is told not to say so.
CDS_ARCHIVE = "driver-classes.jsa"  # in the jars folder
CDS_OPTION = "-XX:SharedArchiveFile="
ARCHIVE_AT_EXIT = "-XX:ArchiveClassesAtExit="
CDS_QUIET = "-Xlog:cds=off -Xlog:cds+dynamic=off"
# Without Hadoop's native library, its local file system starts a `chmod` process for every
# file it creates and `readlink` processes before every rename (Delta's log commits, the
# stream's checkpoint files, each data file), in every micro-batch. Set-up compiles a local file
# system that answers both in the JVM (build/jvm/local-fs); when its jar is there, the local
# JVMs use it for file: paths. On a cluster the tables live in S3 or DBFS and Hadoop's own
# file systems apply.
LOCAL_FS_JAR = Path("local-fs") / "dredge-local-fs.jar"  # in the jars folder
LOCAL_FS_CONF = {
    "spark.hadoop.fs.file.impl": "dredge.hadoop.LocalFileSystem",
    "spark.hadoop.fs.AbstractFileSystem.file.impl": "dredge.hadoop.LocalFs",
}
# Hadoop loads a file system class from the JVM's class path (spark-submit reads local files
# before the session's jars are loaded): the jar goes on it, not in spark.jars.
CLASS_PATH_KEYS = ("spark.driver.extraClassPath", "spark.executor.extraClassPath")

LOCAL_CONF = {
    "spark.driver.host": "127.0.0.1",
    "spark.driver.bindAddress": "127.0.0.1",
    "spark.driver.memory": "4g",
    "spark.databricks.delta.snapshotPartitions": "2",
    "spark.delta.logStore.class": "org.apache.spark.sql.delta.storage.HDFSLogStore",
    "spark.ui.showConsoleProgress": "false",
    "spark.log.level": "WARN",
}


class MissingJarsError(RuntimeError):
    """The local jars folder is missing or empty: run ``make setup``."""


def jars_dir(configured: str) -> Path:
    """Where local jars live: ``$DREDGE_JARS_DIR``, else ``configured`` (relative to the
    current directory if it exists there, else to the project folder)."""
    override = os.environ.get("DREDGE_JARS_DIR")
    if override:
        return Path(override)
    path = Path(configured)
    if path.is_absolute() or path.exists():
        return path
    return PROJECT_ROOT / path


def local_jars(configured: str) -> list[str]:
    """The jar files to pass as ``spark.jars``; raises if setup has not fetched them."""
    folder = jars_dir(configured)
    jars = sorted(str(p) for p in folder.glob("*.jar"))
    if not jars:
        raise MissingJarsError(
            f"no jars in {folder}: run 'make setup' to fetch Delta and the Kafka connector "
            "from Maven Central"
        )
    return jars


def session_conf(cfg: SparkConfig, local_fs: bool = True) -> dict[str, str]:
    """Every Spark setting the factory applies for ``cfg`` (pure; handy for tests);
    ``local_fs=False`` leaves out the local file system and its class path."""
    conf = {**COMMON_CONF, **STATIC_CONF}
    conf["spark.sql.shuffle.partitions"] = str(cfg.shuffle_partitions)
    if cfg.platform == "local":
        conf.update(DELTA_CONF)
        conf.update(LOCAL_CONF)
        conf["spark.jars"] = ",".join(local_jars(cfg.jars_dir))
        conf["spark.ui.enabled"] = str(cfg.ui_enabled).lower()
        conf["spark.sql.files.minPartitionNum"] = str(FILE_PARTITIONS_PER_CORE * cores(cfg.master))
    conf.update(cfg.conf)
    if cfg.platform == "local":
        for key in JVM_OPTION_KEYS:
            conf[key] = local_jvm_options(cfg.conf.get(key, ""))
        archive = (jars_dir(cfg.jars_dir) / CDS_ARCHIVE).resolve()
        driver = conf[JVM_OPTION_KEYS[0]]
        if archive.is_file() and ARCHIVE_AT_EXIT not in driver and CDS_OPTION not in driver:
            conf[JVM_OPTION_KEYS[0]] = f"{driver} {CDS_OPTION}{archive} {CDS_QUIET}"
        local_fs_jar = (jars_dir(cfg.jars_dir) / LOCAL_FS_JAR).resolve()
        if local_fs and local_fs_jar.is_file():
            for key in CLASS_PATH_KEYS:
                conf[key] = os.pathsep.join(p for p in (cfg.conf.get(key), str(local_fs_jar)) if p)
            conf.update({k: v for k, v in LOCAL_FS_CONF.items() if k not in cfg.conf})
    return conf


def cores(master: str) -> int:
    """The task slots of a local master: ``local[N]``, ``local[*]`` (this machine's CPUs),
    ``local-cluster[workers, cores, memory]``; ``local`` is one."""
    found = re.fullmatch(r"local\[(\d+|\*)(?:,\d+)?\]", master)
    if found:
        return int(found[1]) if found[1] != "*" else os.cpu_count() or 1
    found = re.fullmatch(r"local-cluster\[\s*(\d+)\s*,\s*(\d+)\s*,.*\]", master)
    if found:
        return int(found[1]) * int(found[2])
    return 1


def local_jvm_options(configured: str) -> str:
    """A local JVM's options: ``configured``, then :data:`JVM_OPTIONS` and Dredge's log4j2
    file (unless ``configured`` names one)."""
    options = [configured.strip(), JVM_OPTIONS]
    if LOG4J_OPTION not in configured:
        options.append(LOG4J_OPTION + LOG4J_FILE.as_uri())
    return " ".join(o for o in options if o)


def build_session(cfg: SparkConfig) -> SparkSession:
    """Create (or return the active) SparkSession for the configured platform."""
    builder = SparkSession.builder.appName(cfg.app_name)
    if cfg.platform == "local":
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        # Python workers must run this interpreter (the venv: pyarrow, boto3, ...), not
        # whatever `python3` is first on PATH.
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        builder = builder.master(cfg.master)
    for key, value in launch_conf(cfg).items():
        builder = builder.config(key, value)
    return builder.getOrCreate()


def launch_conf(cfg: SparkConfig) -> dict[str, str]:
    """:func:`session_conf`, without the local file system when the JVM already runs: its
    class path is then the started JVM's, and a file system class it may not hold would fail
    every read and write (a script under spark-submit)."""
    return session_conf(cfg, local_fs=not jvm_already_started())


def jvm_already_started() -> bool:
    """True when this Python process did not start its JVM itself: spark-submit started it
    (and handed its port down), or an earlier session did."""
    from pyspark import SparkContext

    return "PYSPARK_GATEWAY_PORT" in os.environ or SparkContext._gateway is not None
