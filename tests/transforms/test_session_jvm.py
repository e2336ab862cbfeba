"""The running session's JVM got the options the factory gives it (they only work at start)."""

from __future__ import annotations

from spark_jobs.session import JVM_OPTIONS


def test_the_local_jvm_compiles_huge_methods(spark):
    """PySpark passes builder settings to spark-submit, which starts the driver JVM with
    ``spark.driver.extraJavaOptions``: the flag must be among the JVM's own arguments."""
    runtime = spark.sparkContext._jvm.java.lang.management.ManagementFactory.getRuntimeMXBean()
    arguments = list(runtime.getInputArguments())
    assert all(option in arguments for option in JVM_OPTIONS.split())


def test_the_local_jvm_logs_with_dredges_log4j_file(spark):
    """The file is the one in force: its filter drops the warnings that every run prints and
    no user can act on, and lets every other warning through."""
    from spark_jobs.session import LOG4J_FILE

    jvm = spark.sparkContext._jvm
    arguments = list(
        jvm.java.lang.management.ManagementFactory.getRuntimeMXBean().getInputArguments()
    )
    assert f"-Dlog4j2.configurationFile={LOG4J_FILE.as_uri()}" in arguments
    log4j = jvm.org.apache.logging.log4j
    config = log4j.LogManager.getContext(False).getConfiguration()
    appender_filter = config.getAppender("stderr").getFilter()

    def shown(logger: str, text: str) -> bool:
        event = (
            log4j.core.impl.Log4jLogEvent.newBuilder().setLoggerName(logger)
            .setLevel(log4j.Level.WARN).setMessage(log4j.message.SimpleMessage(text)).build()
        )  # fmt: skip
        return str(appender_filter.filter(event)) != "DENY"

    assert not shown("org.apache.spark.sql.execution.streaming.runtime.ResolveWriteToStream",
                     "spark.sql.adaptive.enabled is not supported in streaming DataFrames/Datasets "
                     "and will be disabled.")  # fmt: skip
    assert not shown("org.apache.spark.util.SparkStringUtils",
                     "Truncated the string representation of a plan since it was too large. This "
                     "behavior can be adjusted by setting 'spark.sql.debug.maxToStringFields'.")  # fmt: skip
    assert not shown("org.apache.spark.rdd.MapPartitionsRDD",
                     "RDD 85 was locally checkpointed, its lineage has been truncated and cannot "
                     "be recomputed after unpersisting")  # fmt: skip
    assert shown("org.apache.spark.sql.execution.streaming.runtime.ResolveWriteToStream",
                 "Temporary checkpoint location created which is deleted normally when the query "
                 "didn't fail")  # fmt: skip
    assert not shown("org.apache.spark.scheduler.DAGScheduler",
                     "Broadcasting large task binary with size 1083.2 KiB")  # fmt: skip
    # data shipped inside tasks (not plan code) still shows
    assert shown("org.apache.spark.scheduler.TaskSetManager",
                 "Stage 3 contains a task of very large size (2048 KiB). The maximum "
                 "recommended task size is 1000 KiB.")  # fmt: skip
    assert not log4j.LogManager.getLogger("org.apache.hadoop.util.NativeCodeLoader").isWarnEnabled()
    assert log4j.LogManager.getLogger("org.apache.spark.sql.delta.DeltaLog").isWarnEnabled()
    assert not log4j.LogManager.getLogger("org.apache.spark.SparkContext").isInfoEnabled()


def test_sparks_python_workers_import_pyspark_from_its_bytecode(spark):
    """Spark puts pyspark.zip first on its Python processes' path; set-up gave the zip
    bytecode (scripts/pyspark_bytecode.py), so a worker loads it rather than compiling."""
    where = spark.sparkContext.parallelize([0], 1).map(lambda _: __import__("pyspark").__file__)
    assert where.collect()[0].endswith("pyspark.zip/pyspark/__init__.pyc")
