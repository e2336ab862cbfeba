"""Exactly-once publication of a micro-batch to Kafka (the topic Druid ingests).

Spark's own Kafka sink is at-least-once: a batch replayed after a crash is written again.
Here each message belongs to one of a fixed number of producer tasks by a hash of its key (so
a replay gives every task the same messages), and every task publishes its share in one
Kafka transaction with its own ``transactional.id`` (``<app>-p<task>``) - from Spark tasks of
their own after a shuffle by key, or, for a small batch, all from one Spark task. In the same
transaction it commits the batch id as the offset of a marker partition for a consumer group
of its own (the standard ``sendOffsetsToTransaction`` trick). On replay the task reads that
committed offset first and skips a batch it already published; ``initTransactions`` fences a
zombie producer of a killed attempt and aborts its open transaction. A Python worker keeps its
producers between batches; a kept one that was fenced since fails on the marker commit that
opens each transaction, before any message, and is replaced. Consumers that read with
``isolation.level=read_committed`` (Druid's default) see every message exactly once.

Messages are serialised in the JVM (``to_json``); Python only hands bytes to librdkafka
(confluent-kafka), batch by Arrow batch.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeVar

import pyarrow as pa
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

T = TypeVar("T")
MARKER_SUFFIX = ".dredge-commits"
# A batch of at most this many messages is published from one Spark task (all its transactions),
# without the shuffle by key: a streaming micro-batch saves a shuffle stage.
SINGLE_TASK_ROWS = 50_000
RESULT_SCHEMA = "task int, published long, skipped boolean"
# librdkafka's errors and worse (syslog levels 0-3) reach stderr; its warnings do not: they
# are the retries it makes by itself (e.g. "Coordinator load in progress: retrying" while a
# broker starts), and a call that finally fails raises here anyway.
CLIENT_LOG_LEVEL = 3
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
    """Create the data topic and its marker topic if they do not exist. Both are created with
    ``cleanup.policy=delete``: messages of one key from several batches add up, and a
    compacted topic would keep only the last."""
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap, **options})
    existing = set(admin.list_topics(timeout=30).topics)
    wanted = [
        NewTopic(name, num_partitions=n, replication_factor=-1, config={"cleanup.policy": "delete"})
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


# Producers (with their marker consumers) a Python worker keeps between batches, by
# (bootstrap, transactional id, options): each holds no open transaction while kept, and a
# share takes its one out while it runs: ``initTransactions`` is a coordinator round trip per
# producer, and waits when the id's previous transaction is still being completed.
_KEPT: dict[tuple[str, str, tuple[tuple[str, str], ...]], tuple[Any, Any]] = {}
KEPT_WAIT_S = 5.0  # how long a kept producer may take to read and commit the marker


class _Share:
    """One transactional id's part of a batch (``<app>-p<task>``): its producer, the consumer
    that reads its marker, and whether the batch was already published under it.

    The producer and consumer are the ones this process kept from an earlier batch when
    there are any (:data:`_KEPT`), else new ones; :meth:`close` keeps them again when the
    share ended without an open transaction (committed or skipped)."""

    def __init__(
        self, bootstrap: str, topic: str, app_id: str, task: int, batch_id: int,
        options: dict[str, str],
    ) -> None:  # fmt: skip
        self.bootstrap, self.options, self.txn_id = bootstrap, options, f"{app_id}-p{task}"
        self.task, self.topic, self.batch_id, self.sent = task, topic, batch_id, 0
        self._key = (bootstrap, self.txn_id, tuple(sorted(options.items())))
        kept = _KEPT.pop(self._key, None)  # this share's alone until it is kept again
        self.fresh = kept is None  # a new producer: not yet through init_transactions
        self.producer, self.consumer = kept if kept is not None else self._clients()
        self.skipped = self.ended = self.begun = self.dropped = False

    def _clients(self) -> tuple[Any, Any]:
        from confluent_kafka import Consumer, Producer

        consumer = Consumer({"bootstrap.servers": self.bootstrap, "group.id": self.txn_id,
                             "enable.auto.commit": False, "isolation.level": "read_committed",
                             "log_level": CLIENT_LOG_LEVEL, **self.options})  # fmt: skip
        producer = Producer({"bootstrap.servers": self.bootstrap, "transactional.id": self.txn_id,
                             "enable.idempotence": True, "linger.ms": 20,
                             "compression.type": "lz4", "log_level": CLIENT_LOG_LEVEL,
                             **self.options})  # fmt: skip
        return producer, consumer

    def open(self) -> None:
        """Skip a batch already published under this id, or begin its transaction with the
        marker commit, which reaches the transaction coordinator at once. A kept producer is
        tried first, briefly: if another producer with this id has fenced it since (another
        worker, a retried task) or left a transaction open, the marker read or commit fails
        before any message, and a new producer takes over - its ``init_transactions`` fences
        the others and aborts what they left open, then the marker is read again."""
        from confluent_kafka import KafkaException

        if not self.fresh:
            try:
                self._begin(wait=KEPT_WAIT_S)
                return
            except KafkaException:
                self._drop()
                self.producer, self.consumer = self._clients()
                self.fresh, self.dropped, self.begun = True, False, False
        _retry(lambda: self.producer.init_transactions(60))
        self._begin(wait=30)

    def _begin(self, wait: float) -> None:
        from confluent_kafka import KafkaException, TopicPartition

        read = TopicPartition(marker_topic(self.topic), 0)
        got = self._call(lambda: self.consumer.committed([read], timeout=wait))[0]
        if got.error is not None:  # e.g. unstable: never read it as "not published"
            raise KafkaException(got.error)
        self.skipped = got.offset > self.batch_id  # no commit yet: a negative offset
        if self.skipped:
            return
        self.producer.begin_transaction()
        self.begun = True
        marker = TopicPartition(marker_topic(self.topic), 0, self.batch_id + 1)
        group = self.consumer.consumer_group_metadata()
        sent_wait = 60 if self.fresh else wait
        self._call(lambda: self.producer.send_offsets_to_transaction([marker], group, sent_wait))

    def _call(self, call: Callable[[], T]) -> T:
        """A new producer's coordinator call retries what a (re)loading coordinator refuses;
        a kept producer's is tried once: a marker left unstable by an open transaction, or a
        fence, ends the try (see :meth:`open`)."""
        return _retry(call) if self.fresh else call()

    def send(self, key: bytes, value: bytes) -> None:
        if self.skipped:
            return
        while True:
            try:
                self.producer.produce(self.topic, value=value, key=key)
                break
            except BufferError:
                self.producer.poll(0.05)
        self.sent += 1

    def commit(self) -> pa.RecordBatch:
        if not self.skipped:
            _retry(lambda: self.producer.commit_transaction(120))
        self.ended = True
        return _result(self.task, self.sent, self.skipped)

    def close(self) -> None:
        """Keep the clients for this process's next batch when no transaction is open;
        otherwise close them (the next ``init_transactions`` of this id aborts it)."""
        if self.ended:
            _KEPT[self._key] = (self.producer, self.consumer)
        else:
            self._drop()

    def _drop(self) -> None:
        """Close the clients of a share that ends with a transaction open, or of a producer
        replaced; abort its transaction first, so the marker and the data partitions it wrote
        to are stable again at once (not after ``transaction.timeout.ms``) for the retry.
        Nothing it sent can become visible either way; errors here are not the batch's."""
        from confluent_kafka import KafkaException

        if self.dropped:
            return
        self.dropped = True
        try:
            if self.begun:
                self.producer.abort_transaction(10)
        except KafkaException:  # fenced or failed for good: its epoch is over anyway
            pass
        try:
            self.consumer.close()
            self.producer.flush(5)
        except (KafkaException, RuntimeError):
            pass


def _publisher(
    bootstrap: str,
    topic: str,
    app_id: str,
    batch_id: int,
    options: dict[str, str],
    single: tuple[int, ...] | None = None,
) -> Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]]:
    """The ``mapInArrow`` function: every row (``key``, ``value``, ``_task``) goes into the
    transaction of its ``_task``. A spread task owns the one ``_task`` equal to its partition
    id; the ``single`` task owns all of them (the same ids, so the same layout)."""

    def publish(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        from pyspark import TaskContext

        ctx = TaskContext.get()
        owned = single if single is not None else ((ctx.partitionId() if ctx else 0),)
        shares: list[_Share] = []
        try:
            for task in owned:
                shares.append(_Share(bootstrap, topic, app_id, task, batch_id, options))
                shares[-1].open()
            by_task = {share.task: share for share in shares}
            for batch in batches:
                cols = (batch.column(c).to_pylist() for c in ("key", "value", "_task"))
                for key, value, task in zip(*cols, strict=True):
                    share = by_task.get(task)
                    if share is None:  # the hash layout broke: refuse rather than misroute
                        raise RuntimeError(f"message of task {task} reached tasks {owned}")
                    share.send(key, value)
                for share in shares:
                    share.producer.poll(0)
            results = [share.commit() for share in shares]
        finally:
            for share in shares:
                share.close()
        yield from results

    return publish


def task_of(key: Column, tasks: int) -> Column:
    """``_task``: the producer task (transactional id) of a message - the partition that
    ``repartition(tasks, key)`` sends it to (Spark's hash partitioning: Murmur3, seed 42)."""
    return F.pmod(F.hash(key), F.lit(tasks)).alias("_task")


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

    A message's transactional id is ``<app>-p<task>`` with ``task`` = :func:`task_of` its key,
    however the batch is run, so a replay finds every message's marker where the first attempt
    left it. ``rows`` (at least the batch's message count, when known) only picks how: up to
    :data:`SINGLE_TASK_ROWS`, one Spark task runs all ``tasks`` transactions (no shuffle);
    otherwise the batch is shuffled to ``tasks`` Spark tasks, one transaction each.

    Returns (messages published now, producer tasks that found the batch already published).
    """
    opts = dict(options or {})
    key = F.col("key").cast("binary")
    binary = messages_df.select(
        key.alias("key"), F.col("value").cast("binary").alias("value"), task_of(key, tasks)
    )
    if rows is not None and rows <= SINGLE_TASK_ROWS:
        owned: tuple[int, ...] | None = tuple(range(tasks))
        spread = binary.coalesce(1)
    else:
        owned, spread = None, binary.repartition(tasks, "key")
    publish = _publisher(bootstrap, topic, app_id, batch_id, opts, owned)
    result = spread.mapInArrow(publish, RESULT_SCHEMA)
    done = result.collect()
    return sum(r.published for r in done), sum(1 for r in done if r.skipped)
