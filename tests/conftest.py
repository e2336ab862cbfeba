"""Shared fixtures: one local SparkSession for the whole run, temp paths per test."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from spark_jobs.config import SparkConfig

ROOT = Path(__file__).resolve().parent.parent

# The local emulators (kinesalite, moto) accept any credentials; tests never reach real AWS.
for _key, _value in (
    ("AWS_ACCESS_KEY_ID", "test"),
    ("AWS_SECRET_ACCESS_KEY", "test"),
    ("AWS_DEFAULT_REGION", "us-east-1"),
):
    os.environ.setdefault(_key, _value)


@pytest.fixture(scope="session")
def spark() -> Iterator[SparkSession]:
    from spark_jobs.session import build_session

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    cfg = SparkConfig(
        master="local[2]",
        app_name="dredge-tests",
        shuffle_partitions=2,
        ui_enabled=False,
        conf={
            "spark.driver.memory": "3g",
            "spark.sql.adaptive.enabled": "false",
            "spark.default.parallelism": "2",
            "spark.sql.streaming.minBatchesToRetain": "5",
        },
    )
    session = build_session(cfg)
    yield session
    session.stop()
