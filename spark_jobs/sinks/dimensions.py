"""The attribution job's dimension tables (ownership, CIDR labels), read once per Delta
version and kept cached across micro-batches.

Every batch pins the versions it reads (:class:`~spark_jobs.sinks.delta.BatchPlan`), so a
cached copy of a pinned version is exactly what a fresh read would return. Reading them anew
would cost every batch a Delta file-listing job per scan (one per CIDR prefix length, two for
ownership) and a re-read of the files, which a small batch's latency feels.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from pyspark.sql import DataFrame, SparkSession

from spark_jobs.sinks import delta


@dataclass
class DimensionCache:
    """Cached DataFrames of Delta tables, one version per table: asking for a newer version
    unpersists the older one. Call :meth:`close` when the query ends."""

    _held: dict[str, tuple[int, DataFrame]] = field(default_factory=dict)

    def get(
        self,
        spark: SparkSession,
        path: str,
        version: int,
        prepare: Callable[[DataFrame], DataFrame] = lambda df: df,
    ) -> DataFrame:
        """The table at ``path`` as of ``version`` after ``prepare``, persisted and filled.

        Filled here, once per version: a batch's sinks run side by side, and on a cache they
        met empty both jobs' tasks would reach for the same blocks at once (one waits for the
        other's, and Spark warns that the block already exists)."""
        held = self._held.get(path)
        if held is not None and held[0] == version:
            return held[1]
        df = prepare(delta.read_version(spark, path, version)).persist()
        try:
            df.count()
        except Exception:  # not held yet: release it here (the batch may be replayed)
            df.unpersist()
            raise
        if held is not None:
            held[1].unpersist()
        self._held[path] = (version, df)
        return df

    def close(self) -> None:
        """Unpersist everything held."""
        for _, df in self._held.values():
            df.unpersist()
        self._held.clear()
