"""A micro-batch's parsed lines without their lineage: later plans of the batch scan the
rows instead of re-analysing the whole decode and parse plan at every step."""

from __future__ import annotations

import logging

from py4j.protocol import Py4JError
from pyspark import StorageLevel
from pyspark.sql import DataFrame

log = logging.getLogger("dredge.batch")


def without_lineage(df: DataFrame) -> DataFrame:
    """``df`` as a lazy local checkpoint: computed once (by the first job that needs it), kept
    in memory (spilling to disk), and - unlike ``persist`` - planned as a bare scan of those
    rows. Every later plan of the batch (the attribution's joins, each analysed as it is built,
    the cache of the attributed rows, the sinks) then no longer re-analyses and re-optimises
    the whole decode and parse plan. In a 20-line test batch: attribution build 0.6-0.9 s ->
    ~0.26 s, caching and counting the attributed rows ~1.1-1.4 s -> ~0.7-1.0 s.

    The price: the rows live only in the checkpoint's blocks - an executor lost mid-batch
    takes its blocks with it and the batch fails (and is replayed on restart) instead of
    recomputing them, so clusters with preemptible executors use a plain cache
    (``stream.local_checkpoint: false``). Release with :func:`release`."""
    return df.localCheckpoint(eager=False, storageLevel=StorageLevel.MEMORY_AND_DISK)


_WARNED: list[bool] = []


def release(checkpointed: DataFrame) -> None:
    """Drop the blocks of a :func:`without_lineage` checkpoint now (``unpersist`` does not
    reach them; Spark would otherwise free them only when the JVM garbage-collects the RDD).
    Spark Connect has no JVM handle here and frees a checkpoint when its DataFrame is
    garbage-collected; a Spark whose plan classes differ is warned about once."""
    try:
        plan = checkpointed._jdf.queryExecution().analyzed()  # a LogicalRDD
        plan.rdd().unpersist(False)
    except (AttributeError, Py4JError) as exc:
        if not _WARNED:
            _WARNED.append(True)
            log.warning("checkpoint blocks left to Spark's cleaner (freed at JVM GC): %r", exc)
