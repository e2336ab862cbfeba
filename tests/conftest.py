"""Shared fixtures: one local SparkSession for the whole run, temp paths per test."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from spark_jobs.config import SparkConfig

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def spark() -> Iterator["SparkSession"]:  # noqa: F821 - imported lazily so unit tests need no JVM
    from spark_jobs.session import build_session

    os.environ.setdefault("PYSPARK_PYTHON", os.sys.executable)  # type: ignore[attr-defined]
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
