"""The batch writer's bookkeeping: what a batch holds (released when it ends or fails),
the time spent per phase, running independent work side by side, per-version memos."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TypeVar

from pyspark import InheritableThread
from pyspark.sql import DataFrame, SparkSession

from spark_jobs.sinks.lineage import release, without_lineage

log = logging.getLogger("dredge.batch")
T = TypeVar("T")
AQE = "spark.sql.adaptive.enabled"
SHUFFLE_PARTITIONS = "spark.sql.shuffle.partitions"
SMALL_SHUFFLE_PARTITIONS = 2  # a small batch's shuffles (without AQE to coalesce them)


@dataclass
class Held:
    """What a batch cached, released when it ends (or fails): plain caches, and the parsed
    lines as a local checkpoint (``local_checkpoint``) or a cache."""

    local_checkpoint: bool
    caches: list[DataFrame] = field(default_factory=list)
    checkpoints: list[DataFrame] = field(default_factory=list)

    def cache(self, df: DataFrame) -> DataFrame:
        """``df`` persisted, and held (the stage and the attribution build call this from
        two threads: each gets back its own frame)."""
        cached = df.persist()
        self.caches.append(cached)
        return cached

    def rows_of(self, parsed: DataFrame) -> DataFrame:
        """The parsed lines as later plans should see them (see :mod:`..lineage`)."""
        if not self.local_checkpoint:
            return self.cache(parsed)
        checkpoint = without_lineage(parsed)
        self.checkpoints.append(checkpoint)
        return checkpoint

    def replan(self, cached: DataFrame) -> DataFrame:
        """``cached`` (held, not yet computed) cached anew: ``persist`` plans a frame at once,
        under the settings in force, and the same plan cached again would reuse that plan."""
        cached.unpersist()
        self.caches.remove(cached)
        return self.cache(cached)

    def release(self) -> None:
        for df in self.caches:
            df.unpersist()
        for df in self.checkpoints:
            release(df)


class PhaseClock:
    """Seconds spent per named phase of a batch (reported in the batch metrics)."""

    def __init__(self) -> None:
        self.phases: dict[str, float] = {}

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        began = time.monotonic()
        try:
            yield
        finally:
            spent = time.monotonic() - began
            self.phases[name] = round(self.phases.get(name, 0.0) + spent, 3)


def concurrently(first: Callable[[], None], *others: Callable[[], None]) -> None:
    """Run ``first`` here and each of ``others`` in its own thread (Spark schedules their jobs
    side by side); return when all are done, raising the first error (a later one is only
    logged). Used for work that does not depend on the other's result: the stage counts and
    the attribution plan build, and the two sinks - the Delta commit and the Kafka
    transactions are each idempotent per batch id, so neither waits for the other: a batch
    that fails in either is replayed and the one that had finished writes nothing twice.
    The threads inherit the batch's Spark local properties (job group, scheduler pool).
    """
    errors: list[BaseException] = []

    def guarded(fn: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                fn()
            except BaseException as exc:  # re-raised in the batch's thread below
                errors.append(exc)

        return run

    threads = [InheritableThread(target=guarded(fn)) for fn in others]
    for thread in threads:
        thread.start()
    mine: list[BaseException] = []
    try:
        first()
    except BaseException as exc:  # raised below, once the threads are done
        mine.append(exc)
    for thread in threads:
        thread.join()
    failed = mine + errors  # this thread's error first, then the others' as they came
    for later in failed[1:]:
        log.error("also failed in the same batch: %r", later)
    if failed:
        raise failed[0]


def latest(memo: dict[int, T], version: int, make: Callable[[], T]) -> T:
    """``make()`` for a Delta ``version``, kept in ``memo`` (only the latest version: a
    version never changes, and a stream only moves forward)."""
    if version not in memo:
        memo.clear()
        memo[version] = make()
    return memo[version]


class AdaptiveSwitch:
    """Adaptive query execution off and few shuffle partitions for a small batch, the
    session's own settings otherwise; put back as they were when the batch ends.

    On a batch of a few thousand rows AQE's run-time re-planning costs more than it finds:
    each cached input and each exchange becomes a job of its own, and broadcasts over a cached
    table are not reused between the two sides of a join (SPARK-58767) - 13 jobs instead of 5
    for the attribution of a 1,000-line batch. Without AQE nothing coalesces the shuffles'
    partitions, so a small batch also shuffles into :data:`SMALL_SHUFFLE_PARTITIONS` (the
    attribution of a ~50-record latency-bench batch: median 0.87 -> 0.72 s). A batch's
    results depend on neither (the Kafka layout names its partition count itself).
    ``small_lines`` 0 leaves the session's settings alone. The batch's session is the query's
    own clone in classic Spark; under Spark Connect it may be the user's session, which other
    queries share (``conf/databricks.yaml`` turns the switch off).
    """

    def __init__(self, spark: SparkSession, small_lines: int) -> None:
        self.spark, self.small_lines = spark, small_lines
        keys = (AQE, SHUFFLE_PARTITIONS) if small_lines > 0 else ()
        self.initial = {key: spark.conf.get(key, None) for key in keys}
        self.adaptive: bool | None = None  # as last set; None: never touched
        self.small = False  # whether a small batch's settings are in force

    def size(self, lines: int | None) -> None:
        """Set AQE for a batch of ``lines`` parsed lines (None: not known, leave it)."""
        if self.small_lines <= 0 or lines is None:
            return
        small = self.small = lines <= self.small_lines
        if small:
            self.spark.conf.set(AQE, "false")
            self.spark.conf.set(SHUFFLE_PARTITIONS, str(SMALL_SHUFFLE_PARTITIONS))
        else:
            self._put_back()
        self.adaptive = not small and str(self.initial[AQE]).lower() != "false"

    def restore(self) -> None:
        if self.adaptive is not None:
            self._put_back()
            self.small = False

    def _put_back(self) -> None:
        for key, value in self.initial.items():
            if value is None:
                self.spark.conf.unset(key)
            else:
                self.spark.conf.set(key, value)
