"""Timestamp literals mean the same instant whatever the driver process's time zone."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from pyspark.sql import functions as F

from spark_jobs.transforms.timelit import utc_lit

MIDNIGHT_2026 = 1767225600  # 2026-01-01T00:00:00Z


@pytest.fixture()
def new_york() -> Iterator[None]:
    before = os.environ.get("TZ")
    os.environ["TZ"] = "America/New_York"
    time.tzset()
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("TZ", None)
        else:
            os.environ["TZ"] = before
        time.tzset()


def _epoch(spark, col):
    return spark.range(1).select(F.unix_timestamp(col)).first()[0]


def test_naive_and_aware_literals_are_utc_instants(spark, new_york):
    assert _epoch(spark, utc_lit(datetime(2026, 1, 1))) == MIDNIGHT_2026
    assert _epoch(spark, utc_lit(datetime(2026, 1, 1, tzinfo=UTC))) == MIDNIGHT_2026
    # what utc_lit guards against: PySpark reads a naive literal in the process's zone
    assert _epoch(spark, F.lit(datetime(2026, 1, 1))) == MIDNIGHT_2026 + 5 * 3600


def test_none_is_a_null_timestamp(spark):
    row = spark.range(1).select(utc_lit(None).alias("t")).first()
    assert row is not None and row["t"] is None
