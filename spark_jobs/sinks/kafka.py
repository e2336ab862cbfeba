"""Exactly-once publication of a micro-batch to Kafka (the topic Druid ingests).

Spark's own Kafka sink is at-least-once: a batch replayed after a crash is written again.
Here each batch is spread over a fixed number of producer tasks by a hash of the message key
(so a replay gives every task the same messages), and every task publishes its share in one
Kafka transaction with its own ``transactional.id`` (``<app>-p<task>``). In the same
transaction it commits the batch id as the offset of a marker partition for a consumer group
of its own (the standard ``sendOffsetsToTransaction`` trick). On replay the task reads that
committed offset first and skips a batch it already published; ``initTransactions`` fences a
zombie producer of a killed attempt and aborts its open transaction. Consumers that read with
``isolation.level=read_committed`` (Druid's default) see every message exactly once.

Messages are serialised in the JVM (``to_json``); Python only hands bytes to librdkafka
(confluent-kafka), batch by Arrow batch.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeVar

import pyarrow as pa
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

T = TypeVar("T")
MARKER_SUFFIX = ".dredge-commits"
# A batch of at most this many rows is published by one task (task 0), without the shuffle by
# key: a streaming micro-batch saves a Spark job and a producer; larger batches spread.
SINGLE_TASK_ROWS = 50_000
RESULT_SCHEMA = "task int, published long, skipped boolean"
_RESULT_ARROW = pa.schema(
    [("task", pa.int32()), ("published", pa.int64()), ("skipped", pa.bool_())]
)


def _result(task: int, published: int, skipped: bool) -> pa.RecordBatch:
    return pa.RecordBatch.from_pydict(
        {"task": [task], "published": [published], "skipped": [skipped]}, schema=_RESULT_ARROW
    )


def marker_topic(topic: str) -> str:
    """The one-partition topic whose committed offsets record published batches."""
    return f"{topic}{MARKER_SUFFIX}"


def ensure_topics(bootstrap: str, topic: str, partitions: int, options: Mapping[str, str]) -> None:
    """Create the data topic and its marker topic if they do not exist."""
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap, **options})
    existing = set(admin.list_topics(timeout=30).topics)
    wanted = [
        NewTopic(name, num_partitions=n, replication_factor=-1)
        for name, n in ((topic, partitions), (marker_topic(topic), 1))
        if name not in existing
    ]
    if not wanted:
        return
    for name, future in admin.create_topics(wanted).items():
        try:
            future.result(timeout=30)
        except Exception as err:  # a concurrent creator is fine
            if "TOPIC_ALREADY_EXISTS" not in str(err):
                raise RuntimeError(f"cannot create Kafka topic {name}: {err}") from err


RETRIABLE = frozenset(
    {"NOT_COORDINATOR", "COORDINATOR_LOAD_IN_PROGRESS", "COORDINATOR_NOT_AVAILABLE",
     "_TIMED_OUT", "_TRANSPORT", "REQUEST_TIMED_OUT", "CONCURRENT_TRANSACTIONS"}
)  # fmt: skip


def _retry(call: Callable[[], T], attempts: int = 12) -> T:
    """Run a Kafka admin/coordinator call, retrying the errors a broker gives while its group
    or transaction coordinator is (re)loading - e.g. right after it starts."""
    from confluent_kafka import KafkaException

    for attempt in range(attempts):
        try:
            return call()
        except KafkaException as err:
            error: Any = err.args[0] if err.args else None
            name = error.name() if error is not None and hasattr(error, "name") else ""
            retriable = bool(getattr(error, "retriable", lambda: False)()) or name in RETRIABLE
            if not retriable or attempt == attempts - 1:
                raise
            time.sleep(min(0.2 * 2**attempt, 5.0))
    raise AssertionError("unreachable")


def _publisher(
    bootstrap: str,
    topic: str,
    app_id: str,
    batch_id: int,
    options: dict[str, str],
) -> Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]]:
    def publish(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        from confluent_kafka import Consumer, Producer, TopicPartition
        from pyspark import TaskContext

        ctx = TaskContext.get()
        task = ctx.partitionId() if ctx is not None else 0
        txn_id = f"{app_id}-p{task}"
        marker = TopicPartition(marker_topic(topic), 0)
        consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": txn_id,
                "enable.auto.commit": False,
                "isolation.level": "read_committed",
                **options,
            }
        )
        producer = Producer(
            {
                "bootstrap.servers": bootstrap,
                "transactional.id": txn_id,
                "enable.idempotence": True,
                "linger.ms": 20,
                "compression.type": "lz4",
                **options,
            }
        )
        try:
            _retry(lambda: producer.init_transactions(60))
            done = _retry(lambda: consumer.committed([marker], timeout=30))[0].offset
            if done is not None and done > batch_id:
                yield _result(task, 0, True)
                return
            producer.begin_transaction()
            sent = 0
            for batch in batches:
                keys = batch.column("key").to_pylist()
                values = batch.column("value").to_pylist()
                for key, value in zip(keys, values, strict=True):
                    while True:
                        try:
                            producer.produce(topic, value=value, key=key)
                            break
                        except BufferError:
                            producer.poll(0.05)
                    sent += 1
                producer.poll(0)
            _retry(
                lambda: producer.send_offsets_to_transaction(
                    [TopicPartition(marker_topic(topic), 0, batch_id + 1)],
                    consumer.consumer_group_metadata(),
                    60,
                )
            )
            _retry(lambda: producer.commit_transaction(120))
            yield _result(task, sent, False)
        finally:
            consumer.close()
            producer.flush(30)

    return publish


def publish_batch(
    messages_df: DataFrame,
    batch_id: int,
    *,
    bootstrap: str,
    topic: str,
    app_id: str,
    tasks: int,
    options: Mapping[str, str] | None = None,
    rows: int | None = None,
) -> tuple[int, int]:
    """Publish ``messages_df`` (``key``, ``value`` strings) once for ``batch_id``.

    ``rows``, when given, bounds the batch's messages and must be the same on every attempt of
    the batch (e.g. its row count: a replay recomputes the same rows). Up to
    :data:`SINGLE_TASK_ROWS` the whole batch goes to task 0 (``coalesce``, no shuffle);
    otherwise (or without ``rows``) it is spread over ``tasks`` by a hash of the key. Either
    way a message's task - hence its transactional id - is the same on a replay.

    Returns (messages published now, producer tasks that found the batch already published).
    """
    opts = dict(options or {})
    binary = messages_df.select(
        F.col("key").cast("binary").alias("key"), F.col("value").cast("binary").alias("value")
    )
    small = rows is not None and rows <= SINGLE_TASK_ROWS
    spread = binary.coalesce(1) if small else binary.repartition(tasks, "key")
    result = spread.mapInArrow(_publisher(bootstrap, topic, app_id, batch_id, opts), RESULT_SCHEMA)
    done = result.collect()
    return sum(r.published for r in done), sum(1 for r in done if r.skipped)
