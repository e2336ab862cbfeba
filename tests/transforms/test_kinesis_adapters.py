"""Platform connectors' columns are renamed to the one Kinesis schema everything downstream uses."""

from __future__ import annotations

import sys
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


class _FakeReader:
    """``spark.readStream`` standing in for a platform connector: records format and options."""

    def __init__(self, df):
        self.df = df
        self.calls: list[tuple[str, object]] = []

    def format(self, name):
        self.calls.append(("format", name))
        return self

    def options(self, **opts):
        self.calls.append(("options", opts))
        return self

    def load(self):
        return self.df


class _FakeSpark:
    def __init__(self, reader):
        self.readStream = reader


def test_emr_read_never_imports_the_data_source(spark, monkeypatch):
    from spark_jobs.sources.kinesis.adapters import read_kinesis

    for name in (
        "spark_jobs.sources.kinesis.datasource",
        "pyspark.sql.datasource",
        "pyspark.sql.streaming.datasource",
    ):
        monkeypatch.setitem(sys.modules, name, None)  # any import of it now fails
    raw = spark.createDataFrame(
        [(b"x", "flows", "pk", "4958", T)],
        "data binary, streamName string, partitionKey string, sequenceNumber string, "
        "approximateArrivalTimestamp timestamp",
    )
    reader = _FakeReader(raw)
    out = read_kinesis(_FakeSpark(reader), {"streamName": "flows", "region": "us-east-1"}, "emr")
    assert tuple(out.first()) == ("flows", None, "4958", "pk", T, b"x")
    assert reader.calls[0] == ("format", "aws-kinesis")
    with pytest.raises(ImportError):
        read_kinesis(_FakeSpark(reader), {"streamName": "flows"}, "python")
