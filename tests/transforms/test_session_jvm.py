"""The running session's JVM got the options the factory gives it (they only work at start)."""

from __future__ import annotations

from spark_jobs.session import JVM_OPTIONS


def test_the_local_jvm_compiles_huge_methods(spark):
    """PySpark passes builder settings to spark-submit, which starts the driver JVM with
    ``spark.driver.extraJavaOptions``: the flag must be among the JVM's own arguments."""
    runtime = spark.sparkContext._jvm.java.lang.management.ManagementFactory.getRuntimeMXBean()
    arguments = list(runtime.getInputArguments())
    assert all(option in arguments for option in JVM_OPTIONS.split())
