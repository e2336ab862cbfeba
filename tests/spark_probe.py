"""Test helper: how many Spark jobs an action starts."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from pyspark.sql import SparkSession


def spark_jobs_run_by(spark: SparkSession, action: Callable[[], object]) -> tuple[object, int]:
    """``action()``'s result and how many Spark jobs it started (a job group of its own)."""
    sc = spark.sparkContext
    group = f"probe-{uuid.uuid4().hex}"
    sc.setJobGroup(group, "job count probe")
    try:
        result = action()
    finally:
        sc.setLocalProperty("spark.jobGroup.id", None)  # type: ignore[arg-type]
    return result, len(sc.statusTracker().getJobIdsForGroup(group))


def spark_stages_run_by(spark: SparkSession, action: Callable[[], object]) -> tuple[object, int]:
    """``action()``'s result and how many Spark stages its jobs had (a shuffle adds one)."""
    sc = spark.sparkContext
    group = f"probe-{uuid.uuid4().hex}"
    sc.setJobGroup(group, "stage count probe")
    try:
        result = action()
    finally:
        sc.setLocalProperty("spark.jobGroup.id", None)  # type: ignore[arg-type]
    tracker = sc.statusTracker()
    jobs = [tracker.getJobInfo(j) for j in tracker.getJobIdsForGroup(group)]
    return result, sum(len(job.stageIds) for job in jobs if job is not None)
