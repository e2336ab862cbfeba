"""The batch writer plans its later steps on the parsed lines without their lineage
(``without_lineage``: a lazy local checkpoint), computed once and released at the end."""

from __future__ import annotations

import pytest
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from spark_jobs.sinks.lineage import release, without_lineage


def _checkpoint_blocks(spark: SparkSession) -> list[int]:
    """Ids of the RDDs with blocks in storage that a local checkpoint made."""
    infos = spark.sparkContext._jsc.sc().getRDDStorageInfo()  # type: ignore[union-attr]
    return [i.id() for i in infos if "localCheckpoint" in i.callSite()]


def _parsed_like(spark: SparkSession) -> DataFrame:
    return spark.createDataFrame(
        [("10.0.0.1 443",), ("10.0.0.2 -",), (None,)], "line string"
    ).select(
        F.split("line", " ")[0].alias("addr"),
        F.regexp_replace(F.split("line", " ")[1], "^-$", "").alias("port"),
    )


def test_the_checkpoint_has_the_same_rows_and_a_bare_plan(spark: SparkSession) -> None:
    df = _parsed_like(spark)
    cp = without_lineage(df)
    try:
        assertDataFrameEqual(cp, df)
        plan = cp._jdf.queryExecution().analyzed()
        assert plan.getClass().getSimpleName() == "LogicalRDD"
        # what comes after plans on a scan of the rows, not on the expressions that made them
        later = cp.where(F.col("port") != "").select("addr")
        assert "regexp_replace" not in later._jdf.queryExecution().analyzed().toString()
        assert "regexp_replace" in df.select("addr")._jdf.queryExecution().analyzed().toString()
    finally:
        release(cp)


@pytest.mark.filterwarnings("ignore:Cannot infer the eval type")
def test_the_rows_are_computed_once_for_several_jobs(spark: SparkSession) -> None:
    calls = spark.sparkContext.accumulator(0)

    @F.udf("long")
    def counted(x: int) -> int:  # counts how often the input is computed
        calls.add(1)
        return x

    df = spark.range(50).select(counted("id").alias("id"))
    cp = without_lineage(df)
    try:
        assert calls.value == 0  # lazy: nothing runs until a job needs the rows
        assert cp.count() == 50
        assert cp.where("id % 2 = 0").count() == 25
        assert sorted(r.id for r in cp.collect()) == list(range(50))
        assert calls.value == 50  # once, though three jobs read them
    finally:
        release(cp)


def test_release_drops_the_checkpoint_blocks(spark: SparkSession) -> None:
    before = set(_checkpoint_blocks(spark))
    cp = without_lineage(spark.range(100).toDF("id"))
    cp.count()
    made = set(_checkpoint_blocks(spark)) - before
    assert len(made) == 1
    release(cp)
    assert not made & set(_checkpoint_blocks(spark))


def test_release_is_the_end_of_the_checkpoint(spark: SparkSession) -> None:
    cp = without_lineage(spark.range(3).toDF("id"))
    release(cp)  # never computed: nothing stored, no error
    release(cp)  # twice: still no error
    # released rows are gone for good (the writer releases only when the batch is done)
    with pytest.raises(Exception, match="local checkpointing"):
        cp.count()
