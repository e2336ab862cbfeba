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
from pyspark.sql import DataFrame

log = logging.getLogger("dredge.batch")
T = TypeVar("T")


@dataclass
class Held:
    """What a batch cached, released when it ends (or fails)."""

    caches: list[DataFrame] = field(default_factory=list)

    def cache(self, df: DataFrame) -> DataFrame:
        """``df`` persisted, and held."""
        cached = df.persist()
        self.caches.append(cached)
        return cached

    def release(self) -> None:
        for df in self.caches:
            df.unpersist()


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


def concurrently(first: Callable[[], T], *others: Callable[[], None]) -> T:
    """Run ``first`` here and each of ``others`` in its own thread (Spark schedules their jobs
    side by side); return ``first``'s result when all are done, raising the first error (a
    later one is only logged). Used for the writes of a batch: each is idempotent per batch
    id, so none waits for another: a batch that fails in one is replayed and the ones that
    had finished write nothing twice.
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
    result: T | None = None
    try:
        result = first()
    except BaseException as exc:  # raised below, once the threads are done
        mine.append(exc)
    for thread in threads:
        thread.join()
    failed = mine + errors  # this thread's error first, then the others' as they came
    for later in failed[1:]:
        log.error("also failed in the same batch: %r", later)
    if failed:
        raise failed[0]
    return result  # type: ignore[return-value]  # set: ``first`` raised nothing


def latest(memo: dict[int, T], version: int, make: Callable[[], T]) -> T:
    """``make()`` for a Delta ``version``, kept in ``memo`` (only the latest version: a
    version never changes, and a stream only moves forward)."""
    if version not in memo:
        memo.clear()
        memo[version] = make()
    return memo[version]
