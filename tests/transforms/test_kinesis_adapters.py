"""Platform connectors' columns are renamed to the one Kinesis schema everything downstream uses."""

from __future__ import annotations

from datetime import datetime

import pytest

from spark_jobs.schemas import KINESIS_RECORD_SCHEMA
from spark_jobs.sources.kinesis.adapters import to_source_schema

T = datetime(2026, 1, 1, 0, 0, 1)


def test_databricks_columns_are_renamed(spark):
    df = spark.createDataFrame(
        [("pk", b"\x1f\x8b", "flows", "shardId-000000000001", "4958", T)],
        "partitionKey string, data binary, stream string, shardId string, "
        "sequenceNumber string, approximateArrivalTimestamp timestamp",
    )
    out = to_source_schema(df, "databricks")
    assert out.schema.simpleString() == KINESIS_RECORD_SCHEMA.simpleString()
    assert tuple(out.first()) == ("flows", "shardId-000000000001", "4958", "pk", T, b"\x1f\x8b")


def test_emr_columns_are_renamed_and_the_missing_shard_is_null(spark):
    df = spark.createDataFrame(
        [(b"x", "flows", "pk", "4958", T)],
        "data binary, streamName string, partitionKey string, sequenceNumber string, "
        "approximateArrivalTimestamp timestamp",
    )
    out = to_source_schema(df, "emr")
    assert out.schema.simpleString() == KINESIS_RECORD_SCHEMA.simpleString()
    assert tuple(out.first()) == ("flows", None, "4958", "pk", T, b"x")


def test_unknown_platform_is_refused(spark):
    df = spark.createDataFrame([(1,)], "x int")
    with pytest.raises(KeyError):
        to_source_schema(df, "flink")
