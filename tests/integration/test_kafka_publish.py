"""Exactly-once Kafka publication of a batch (``publish_batch``) against the local broker: a
message's transactional id follows its key however the batch runs - a small batch from one
Spark task without a shuffle, a large one shuffled to a task per id - so a replay publishes
nothing twice even when it runs the other way; read_committed consumers see every message
once."""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pyarrow as pa
import pytest
from _flowkit import KAFKA
from py4j.protocol import Py4JError
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from spark_probe import spark_stages_run_by

from spark_jobs.sinks import kafka
from spark_jobs.sinks.kafka import SINGLE_TASK_ROWS, _Share, ensure_topics, publish_batch, task_of

pytestmark = pytest.mark.integration
SMALL, LARGE = 10, SINGLE_TASK_ROWS + 1  # row counts that pick each way of running


def _messages(spark: SparkSession, first: int, n: int) -> DataFrame:
    return (
        spark.range(first, first + n, numPartitions=3)
        .select(F.format_string("k%05d", "id").alias("key"),
                F.to_json(F.struct(F.col("id").alias("n"))).alias("value"))
    )  # fmt: skip


def _committed(spark: SparkSession, topic: str) -> list[tuple[str, str]]:
    rows = (
        spark.read.format("kafka").option("kafka.bootstrap.servers", KAFKA)
        .option("subscribe", topic).option("startingOffsets", "earliest")
        .option("kafka.isolation.level", "read_committed").load()
        .selectExpr("CAST(key AS STRING) k", "CAST(value AS STRING) v").collect()
    )  # fmt: skip
    return sorted((r.k, r.v) for r in rows)


def _keys(first: int, n: int) -> list[str]:
    return [f"k{i:05d}" for i in range(first, first + n)]


@contextmanager
def _adaptive(spark: SparkSession, on: bool = True) -> Iterator[None]:
    """AQE on (as in the job's own session) or off, then as it was (the test session starts
    with it off; a benchmark run in the same session may have turned it on)."""
    before = spark.conf.get("spark.sql.adaptive.enabled")
    spark.conf.set("spark.sql.adaptive.enabled", str(on).lower())
    try:
        yield
    finally:
        spark.conf.set("spark.sql.adaptive.enabled", str(before))


@pytest.fixture
def target(spark: SparkSession) -> tuple[str, str]:
    topic, app = f"it.publish.{uuid.uuid4().hex[:8]}", f"it-publish-{uuid.uuid4().hex[:8]}"
    ensure_topics(KAFKA, topic, 2, {})
    return topic, app


def _publish(target: tuple[str, str], df: DataFrame, batch: int, rows: int | None):
    topic, app = target
    return publish_batch(df, batch, bootstrap=KAFKA, topic=topic, app_id=app, tasks=2, rows=rows)


def test_each_batch_once_and_replays_publish_nothing_either_way(
    spark: SparkSession, target: tuple[str, str]
) -> None:
    small = _messages(spark, 0, 30)
    assert _publish(target, small, 0, SMALL) == (30, 0)  # one Spark task, both transactions
    assert _publish(target, small, 0, SMALL) == (0, 2)  # replay: both ids find their marker
    assert _publish(target, small, 0, LARGE) == (0, 2)  # replayed shuffled: still nothing
    large = _messages(spark, 100, 40)
    with _adaptive(spark):
        assert _publish(target, large, 1, LARGE) == (40, 0)  # shuffled to two tasks
        assert _publish(target, large, 1, None) == (0, 2)  # no row count: shuffled as well
    assert _publish(target, large, 1, SMALL) == (0, 2)  # replayed from one task: nothing
    assert _publish(target, _messages(spark, 200, 5), 2, SMALL) == (5, 0)
    seen = _committed(spark, target[0])
    assert [k for k, _ in seen] == _keys(0, 30) + _keys(100, 40) + _keys(200, 5)  # each once
    assert ("k00007", '{"n":7}') in seen


def test_a_half_published_batch_replayed_the_other_way_is_completed_once(
    spark: SparkSession, target: tuple[str, str]
) -> None:
    topic, app = target
    batch = _messages(spark, 0, 40)
    tasks = [r._task for r in batch.select(task_of(F.col("key").cast("binary"), 2)).collect()]
    assert set(tasks) == {0, 1}
    # the first attempt (shuffled) committed task 1's transaction, then died before task 0's
    share = _Share(KAFKA, topic, app, 1, 7, {})
    try:
        share.open()
        for row in batch.where(task_of(F.col("key").cast("binary"), 2) == 1).collect():
            share.send(row.key.encode(), row.value.encode())
        share.commit()
    finally:
        share.close()
    # the replay runs as a small batch: task 0 publishes its share, task 1 skips
    assert _publish(target, batch, 7, SMALL) == (tasks.count(0), 1)
    assert [k for k, _ in _committed(spark, topic)] == _keys(0, 40)  # every message once


def test_the_task_of_a_key_is_its_partition_after_the_shuffle(spark: SparkSession) -> None:
    keys = _messages(spark, 0, 200).select(F.col("key").cast("binary").alias("key"))
    for adaptive in (False, True):
        with _adaptive(spark, adaptive):
            got = keys.repartition(2, "key").select(
                F.spark_partition_id().alias("part"), task_of(F.col("key"), 2)
            )
            assert got.where(F.col("part") != F.col("_task")).count() == 0
            assert got.select("_task").distinct().count() == 2


def test_a_small_batch_publishes_without_a_shuffle(
    spark: SparkSession, target: tuple[str, str]
) -> None:
    small = _messages(spark, 0, 10)
    with _adaptive(spark, on=False):  # AQE would run the shuffle as a job of its own
        one_task = spark_stages_run_by(spark, lambda: _publish(target, small, 0, SMALL))
        shuffled = spark_stages_run_by(spark, lambda: _publish(target, small, 1, LARGE))
    assert one_task == ((10, 0), 1)  # one stage: no shuffle
    assert shuffled == ((10, 0), 2)  # the shuffle by key adds a stage


def _arrow(first: int, n: int, bad_task: int | None = None) -> pa.RecordBatch:
    """Messages as the publisher gets them (``key``, ``value``, ``_task``): task = id % 2;
    ``bad_task`` routes the last one to a task no one owns."""
    ids = list(range(first, first + n))
    tasks = [i % 2 for i in ids]
    if bad_task is not None:
        tasks[-1] = bad_task
    return pa.RecordBatch.from_pydict(
        {"key": [f"k{i:05d}".encode() for i in ids],
         "value": [f'{{"n":{i}}}'.encode() for i in ids],
         "_task": pa.array(tasks, pa.int32())}
    )  # fmt: skip


def _in_process(target: tuple[str, str], batch: int, rows: pa.RecordBatch) -> tuple[int, int]:
    """One Spark task's publication of a small batch, run here (this process is the worker)."""
    topic, app = target
    publish = kafka._publisher(KAFKA, topic, app, batch, {}, (0, 1))
    done = pa.Table.from_batches(list(publish(iter([rows])))).to_pylist()
    return sum(r["published"] for r in done), sum(1 for r in done if r["skipped"])


def _kept(target: tuple[str, str], task: int):
    return kafka._KEPT.get((KAFKA, f"{target[1]}-p{task}", ()), (None, None))[0]


def test_a_worker_keeps_its_producers_for_the_next_batch(
    spark: SparkSession, target: tuple[str, str]
) -> None:
    assert _in_process(target, 0, _arrow(0, 6)) == (6, 0)
    first = _kept(target, 0), _kept(target, 1)
    assert None not in first  # kept: no transaction open
    assert _in_process(target, 1, _arrow(6, 4)) == (4, 0)
    assert (_kept(target, 0), _kept(target, 1)) == first  # the same producers, no new init
    assert _in_process(target, 1, _arrow(6, 4)) == (0, 2)  # a replay still finds its markers
    assert [k for k, _ in _committed(spark, target[0])] == _keys(0, 10)


def test_a_kept_producer_fenced_since_is_replaced_and_publishes_once(
    spark: SparkSession, target: tuple[str, str]
) -> None:
    from confluent_kafka import Producer

    assert _in_process(target, 0, _arrow(0, 6)) == (6, 0)
    kept = _kept(target, 0)
    # another worker (or a retried task) opens a producer with the same id: it fences ours
    other = Producer({"bootstrap.servers": KAFKA, "transactional.id": f"{target[1]}-p0"})
    other.init_transactions(30)
    assert _in_process(target, 1, _arrow(6, 6)) == (6, 0)
    assert _kept(target, 0) is not None and _kept(target, 0) is not kept  # replaced
    assert [k for k, _ in _committed(spark, target[0])] == _keys(0, 12)  # each once


def test_a_failed_share_is_not_kept_and_its_retry_publishes_once(
    spark: SparkSession, target: tuple[str, str]
) -> None:
    assert _in_process(target, 0, _arrow(0, 4)) == (4, 0)
    with pytest.raises(RuntimeError, match="message of task 7 reached tasks"):
        _in_process(target, 1, _arrow(4, 6, bad_task=7))  # both transactions left open
    assert _kept(target, 0) is None and _kept(target, 1) is None
    assert [k for k, _ in _committed(spark, target[0])] == _keys(0, 4)  # nothing of batch 1
    assert _in_process(target, 1, _arrow(4, 6)) == (6, 0)  # the retry: new producers
    assert [k for k, _ in _committed(spark, target[0])] == _keys(0, 10)


def test_a_failed_share_aborts_at_once_and_a_stale_kept_producer_gives_way(
    spark: SparkSession, target: tuple[str, str]
) -> None:
    from confluent_kafka import Consumer, TopicPartition

    topic, app = target
    assert _in_process(target, 0, _arrow(0, 4)) == (4, 0)
    elsewhere = {k: kafka._KEPT.pop(k) for k in list(kafka._KEPT) if k[1].startswith(app)}
    assert len(elsewhere) == 2  # another worker holds the kept producers of both ids
    with pytest.raises(RuntimeError, match="message of task 7 reached tasks"):
        _in_process(target, 1, _arrow(4, 6, bad_task=7))  # new producers, then a failure
    # its transactions were aborted, not left open: the markers are stable again at once
    reader = Consumer({"bootstrap.servers": KAFKA, "group.id": f"{app}-p0",
                       "isolation.level": "read_committed", "enable.auto.commit": False})  # fmt: skip
    try:
        got = reader.committed([TopicPartition(kafka.marker_topic(topic), 0)], timeout=5)[0]
    finally:
        reader.close()
    assert got.error is None and got.offset == 1  # batch 0's marker; batch 1 not published
    kafka._KEPT.update(elsewhere)  # the retry lands on the worker with the stale producers
    assert _in_process(target, 1, _arrow(4, 6)) == (6, 0)  # they give way to new ones
    stale = {id(producer) for producer, _ in elsewhere.values()}
    assert stale.isdisjoint({id(_kept(target, 0)), id(_kept(target, 1))})
    assert [k for k, _ in _committed(spark, topic)] == _keys(0, 10)  # every message once


def _writer_to(spark: SparkSession, tmp_path, topic: str, app: str):
    from batch_writer_kit import writer_and_lines

    writer, targets, lines = writer_and_lines(spark, tmp_path)
    writer.targets = dataclasses.replace(
        targets, kafka_bootstrap=KAFKA, kafka_topic=topic, app_id=app
    )
    return writer, lines


def test_a_batch_publishes_the_rows_its_enriched_commit_wrote_once(
    spark: SparkSession, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The batch writer builds the messages from the files of its enriched commit; where
    those cannot be listed, from its attribution again: the same messages either way, and a
    replay (the enriched commit there, the Kafka transactions too) publishes none again."""
    from spark_jobs import delta_log

    topics = [f"it.commit.{uuid.uuid4().hex[:8]}" for _ in range(2)]
    for topic in topics:
        ensure_topics(KAFKA, topic, 2, {})
    writer, lines = _writer_to(spark, tmp_path / "files", topics[0], f"it-{topics[0]}")
    try:
        writer(lines, 0)
        assert writer.metrics[-1]["kafka_published"] == 1  # both flows: one minute, one group
        writer(lines, 0)  # a replay: the enriched commit and both transactions found
        assert (
            writer.metrics[-1]["kafka_published"],
            writer.metrics[-1]["kafka_tasks_skipped"],
        ) == (0, 2)
        enriched = spark.read.format("delta").load(writer.targets.enriched).collect()
    finally:
        writer.close()

    def renamed(*args: object):
        raise Py4JError("Method getChanges([...]) does not exist")  # another Delta build

    monkeypatch.setattr(delta_log, "_commits_after", renamed)
    writer, _ = _writer_to(spark, tmp_path / "again", topics[1], f"it-{topics[1]}")
    try:
        writer(lines, 0)  # the same input files
        assert writer.metrics[-1]["kafka_published"] == 1
    finally:
        writer.close()
    from_files, recomputed = (_committed(spark, topic) for topic in topics)
    assert from_files == recomputed and len(from_files) == 1
    message = json.loads(from_files[0][1])
    assert (message["flows"], message["bytes"], message["batch"]) == (
        len(enriched),
        sum(r.bytes for r in enriched),
        0,
    )
    assert len(enriched) == 2 and message["src_attribution_status"] == "unattributed"


def test_topics_are_created_never_compacted(target: tuple[str, str]) -> None:
    """Messages of one key from several batches add up: a compacted topic would keep only the
    last, so the job creates its topics with the delete policy whatever the broker's default."""
    from confluent_kafka.admin import AdminClient, ConfigResource

    admin = AdminClient({"bootstrap.servers": KAFKA})
    topics = (target[0], kafka.marker_topic(target[0]))
    wanted = [ConfigResource(ConfigResource.Type.TOPIC, t) for t in topics]
    for future in admin.describe_configs(wanted).values():
        policy = future.result(timeout=30)["cleanup.policy"]
        assert (policy.value, policy.is_default) == ("delete", False)
