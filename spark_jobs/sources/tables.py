"""Batch reads of Dredge's own tables (for checks and analysis, not for the stream)."""

from __future__ import annotations

from pathlib import Path

from pyspark.sql import DataFrame, SparkSession


def read_table(spark: SparkSession, path: str, where: str | None = None) -> DataFrame:
    """A Delta table, optionally restricted by a SQL predicate (``event_date = '2026-01-01'``);
    a predicate on partition columns prunes files."""
    df = spark.read.format("delta").load(path)
    return df.where(where) if where else df


def read_ground_truth(spark: SparkSession, path: str) -> DataFrame:
    """The simulator's flow ground truth: a Parquet folder (``<sim out>/truth/flows``), or a
    Delta table when ``path`` holds a ``_delta_log``."""
    if "://" not in path and (Path(path) / "_delta_log").is_dir():
        return spark.read.format("delta").load(path)
    return spark.read.parquet(path)
