"""Test helper: how many Spark jobs (or stages) an action starts."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from pyspark.sql import SparkSession


def _in_group(spark: SparkSession, action: Callable[[], object]) -> tuple[object, list[int]]:
    """``action()``'s result and the ids of the jobs it started (a job group of its own)."""
    sc = spark.sparkContext
    group = f"probe-{uuid.uuid4().hex}"
    sc.setJobGroup(group, "job count probe")
    try:
        result = action()
    finally:
        sc.setLocalProperty("spark.jobGroup.id", None)  # type: ignore[arg-type]
    return result, list(sc.statusTracker().getJobIdsForGroup(group))


def spark_jobs_run_by(spark: SparkSession, action: Callable[[], object]) -> tuple[object, int]:
    """``action()``'s result and how many Spark jobs it started."""
    result, jobs = _in_group(spark, action)
    return result, len(jobs)


def spark_stages_run_by(spark: SparkSession, action: Callable[[], object]) -> tuple[object, int]:
    """``action()``'s result and how many Spark stages its jobs had (a shuffle adds one)."""
    result, jobs = _in_group(spark, action)
    tracker = spark.sparkContext.statusTracker()
    infos = [tracker.getJobInfo(j) for j in jobs]
    return result, sum(len(info.stageIds) for info in infos if info is not None)
