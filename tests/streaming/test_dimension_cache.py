"""The batch writer's cache of dimension tables: one persisted copy per pinned Delta version."""

from __future__ import annotations

from pathlib import Path

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from spark_jobs.sinks import delta
from spark_jobs.sinks.dimensions import DimensionCache


def _append(spark: SparkSession, path: str, values: list[str]) -> int:
    df = spark.createDataFrame([(v,) for v in values], "ip string")
    df.write.format("delta").mode("append").save(path)
    return delta.table_version(spark, path)


def test_one_cached_copy_per_version_and_a_new_version_replaces_it(
    spark: SparkSession, tmp_path: Path
) -> None:
    path = str(tmp_path / "ownership")
    v0 = _append(spark, path, ["192.0.2.1"])
    cache = DimensionCache()
    upper = lambda df: df.withColumn("ip", F.upper("ip"))  # noqa: E731
    first = cache.get(spark, path, v0, upper)
    assert first.is_cached and sorted(r.ip for r in first.collect()) == ["192.0.2.1"]
    assert cache.get(spark, path, v0, upper) is first  # same version: the same cached frame

    v1 = _append(spark, path, ["192.0.2.2"])
    second = cache.get(spark, path, v1, upper)
    assert second is not first and not first.is_cached and second.is_cached
    assert sorted(r.ip for r in second.collect()) == ["192.0.2.1", "192.0.2.2"]
    # a pinned older version still reads exactly that version (a replayed batch)
    again = cache.get(spark, path, v0)
    assert sorted(r.ip for r in again.collect()) == ["192.0.2.1"]

    cache.close()
    assert not again.is_cached


def test_a_version_is_filled_when_it_is_handed_out(spark: SparkSession, tmp_path: Path) -> None:
    """The batch's sinks run side by side: the cache must hold the rows before either reads
    it (the data files removed afterwards, it still answers from memory)."""
    path = tmp_path / "labels"
    v0 = _append(spark, str(path), ["198.51.100.7"])
    cache = DimensionCache()
    held = cache.get(spark, str(path), v0)
    for data_file in path.glob("*.parquet"):
        data_file.unlink()
    assert [r.ip for r in held.collect()] == ["198.51.100.7"]
    cache.close()
