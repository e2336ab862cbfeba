"""Exactly-once Kafka publication of a batch (``publish_batch``) against the local broker: a
small batch from one task without a shuffle, a large one spread over tasks by key; a replay of
either publishes nothing; read_committed consumers see every message once."""

from __future__ import annotations

import uuid

import pytest
from _flowkit import KAFKA
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from spark_probe import spark_stages_run_by

from spark_jobs.sinks.kafka import SINGLE_TASK_ROWS, ensure_topics, publish_batch

pytestmark = pytest.mark.integration


def _messages(spark: SparkSession, first: int, n: int) -> DataFrame:
    return (
        spark.range(first, first + n, numPartitions=3)
        .select(F.format_string("k%05d", "id").alias("key"),
                F.to_json(F.struct(F.col("id").alias("n"))).alias("value"))
    )  # fmt: skip


def _committed(spark: SparkSession, topic: str) -> list[tuple[str, str, int]]:
    rows = (
        spark.read.format("kafka").option("kafka.bootstrap.servers", KAFKA)
        .option("subscribe", topic).option("startingOffsets", "earliest")
        .option("kafka.isolation.level", "read_committed").load()
        .selectExpr("CAST(key AS STRING) k", "CAST(value AS STRING) v", "partition").collect()
    )  # fmt: skip
    return sorted((r.k, r.v, r.partition) for r in rows)


def test_small_and_large_batches_publish_once_and_replays_publish_nothing(
    spark: SparkSession,
) -> None:
    topic, app = f"it.publish.{uuid.uuid4().hex[:8]}", f"it-publish-{uuid.uuid4().hex[:8]}"
    ensure_topics(KAFKA, topic, 2, {})

    def publish(df: DataFrame, batch: int, rows: int | None) -> tuple[int, int]:
        return publish_batch(df, batch, bootstrap=KAFKA, topic=topic, app_id=app, tasks=2,
                             rows=rows)  # fmt: skip

    small = _messages(spark, 0, 30)
    assert publish(small, 0, rows=30) == (30, 0)  # one task published all 30
    assert publish(small, 0, rows=30) == (0, 1)  # replay: task 0 finds its marker
    large = _messages(spark, 100, 40)
    assert publish(large, 1, rows=SINGLE_TASK_ROWS + 1) == (40, 0)  # spread over 2 tasks
    assert publish(large, 1, rows=SINGLE_TASK_ROWS + 1) == (0, 2)  # replay: both skip
    assert publish(large, 1, rows=None) == (0, 2)  # no row count: spread as well
    after = _messages(spark, 200, 5)
    assert publish(after, 2, rows=5) == (5, 0)  # task 0's marker moved past batch 1

    seen = _committed(spark, topic)
    keys = [k for k, _, _ in seen]
    expected = [f"k{i:05d}" for i in [*range(30), *range(100, 140), *range(200, 205)]]
    assert keys == expected  # every message once, none twice
    assert ("k00007", '{"n":7}') in {(k, v) for k, v, _ in seen}
    assert {p for _, _, p in seen} == {0, 1}  # the producers' partitioner used both


def test_a_small_batch_publishes_without_a_shuffle(spark: SparkSession) -> None:
    topic, app = f"it.publish.{uuid.uuid4().hex[:8]}", f"it-publish-{uuid.uuid4().hex[:8]}"
    ensure_topics(KAFKA, topic, 2, {})
    small = _messages(spark, 0, 10)

    def run(rows: int) -> tuple[int, int]:
        return publish_batch(
            small, rows, bootstrap=KAFKA, topic=topic, app_id=app, tasks=2, rows=rows
        )

    one_task = spark_stages_run_by(spark, lambda: run(10))
    spread = spark_stages_run_by(spark, lambda: run(SINGLE_TASK_ROWS + 1))
    assert one_task == ((10, 0), 1)  # one stage: no shuffle
    assert spread == ((10, 0), 2)  # the shuffle by key adds a stage
