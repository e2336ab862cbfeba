"""A micro-batch like the last one compiles no new code: Spark keeps the compiled classes
(``spark.sql.codegen.cache.maxEntries`` holds a whole batch's worth) and the batch writes no
value that changes from batch to batch into the generated code (a batch plan's clock, which
decides pending expiry, counts in whole minutes). A batch with quarantined lines does compile their small projection
anew: ``quarantined_at`` is the batch's current time."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from batch_writer_kit import writer_and_lines
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from spark_jobs.sinks import flow_batch


def _compilations(spark: SparkSession) -> int:
    """Classes Spark has compiled in this JVM so far (its codegen metrics)."""
    metrics = spark.sparkContext._jvm.org.apache.spark.metrics.source.CodegenMetrics  # type: ignore[union-attr]
    return int(metrics.METRIC_COMPILATION_TIME().getCount())


class _Clock(datetime):
    """``datetime`` whose ``now`` moves on by 20 seconds per call within one minute."""

    calls = 0

    @classmethod
    def now(cls, tz=None):  # type: ignore[no-untyped-def,override]
        cls.calls += 1
        return datetime(2026, 11, 27, 3, 0, min(cls.calls * 20, 59), tzinfo=tz or UTC)


def test_a_repeated_batch_compiles_no_code(
    spark: SparkSession, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the job's session factory keeps several batches' ~80 classes (default 100)
    assert int(spark.conf.get("spark.sql.codegen.cache.maxEntries")) >= 400
    monkeypatch.setattr(flow_batch, "datetime", _Clock)
    monkeypatch.setattr(_Clock, "calls", 0)
    writer, _, lines = writer_and_lines(spark, tmp_path)
    lines = lines.where(~F.col("line").contains(" 99999 "))  # no quarantined line
    writer(lines, 0)
    writer(lines, 1)  # the second batch reads its own first Delta versions: warms up the rest
    before = _compilations(spark)
    writer(lines, 2)  # another clock second, the same minute
    assert _compilations(spark) == before
    assert [(m["flows_final"], m["quarantined"]) for m in writer.metrics] == [(2, 0)] * 3
