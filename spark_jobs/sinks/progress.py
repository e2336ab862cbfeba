"""Per-batch query progress as metrics, with the Kinesis source lag.

``FlowBatchWriter`` reports ``{"dredge_batch": ...}`` from inside ``foreachBatch``; the source lag
is not visible there. Python data sources in 4.2 have no custom-metrics hook, so
``dredge-kinesis`` reports its lag as the source's ``latestOffset``
(``{"millisBehindLatest": max, "shards": {"<stream>/<shard>": ms}}``, see
``sources/kinesis/datasource.py``), which Spark puts into each batch's progress. A
:class:`ProgressLogger` (a ``StreamingQueryListener``) writes one ``{"dredge_progress": ...}``
line per progress event to the metrics file and hands the lag to the batch's console line
(:mod:`spark_jobs.console`); :func:`parse_progress` is the pure part.

The platform connectors (``kind`` databricks / emr) report their lag differently (or not at
all); for them ``source_lag_ms`` is null. The offset JSON has no record count behind the tip
(Kinesis does not expose one), so no ``records_behind`` key is written.
"""

from __future__ import annotations

import json
import logging
import threading
import weakref
from collections import deque
from collections.abc import Mapping
from typing import Any

from pyspark.sql import SparkSession
from pyspark.sql.streaming import StreamingQueryListener

from spark_jobs import console

LOG = logging.getLogger(__name__)
LAG_KEY = "millisBehindLatest"
KEEP = 200  # progress entries kept in memory for tests and the demo


def _as_offset(value: Any) -> Mapping[str, Any] | None:
    """A source offset as a mapping: ``progress.json`` nests it, the event object has a string."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return None
    return value if isinstance(value, Mapping) else None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return value


def source_lag_ms(sources: Any) -> int | None:
    """Max ``millisBehindLatest`` over all shards of all sources; None when none reports it."""
    lags: list[float] = []
    for source in sources or []:
        offset = _as_offset(source.get("latestOffset")) if isinstance(source, Mapping) else None
        if offset is None:
            continue
        shards = offset.get("shards")
        per_shard = [_number(v) for v in shards.values()] if isinstance(shards, Mapping) else []
        found = [v for v in per_shard if v is not None]
        top = _number(offset.get(LAG_KEY))
        lags.extend(found if found else [top] if top is not None else [])
    return int(max(lags)) if lags else None


def parse_progress(progress: Mapping[str, Any]) -> dict[str, Any]:
    """The ``dredge_progress`` fields of one query progress (the dict of ``progress.json``).

    Returns batch_id, query (its name, else its id), num_input_rows, input_rows_per_s,
    processed_rows_per_s, batch_duration_ms and source_lag_ms (None when unknown). Spark omits
    a rate that is NaN; it comes back as None.
    """
    durations = progress.get("durationMs") or {}
    duration = progress.get("batchDuration")
    if duration is None:
        duration = durations.get("triggerExecution")
    return {
        "batch_id": progress.get("batchId"),
        "query": progress.get("name") or progress.get("id"),
        "num_input_rows": progress.get("numInputRows"),
        "input_rows_per_s": _number(progress.get("inputRowsPerSecond")),
        "processed_rows_per_s": _number(progress.get("processedRowsPerSecond")),
        "batch_duration_ms": duration,
        "source_lag_ms": source_lag_ms(progress.get("sources")),
    }


DRAIN_S = 10.0  # how long a finished query waits for its last listener events


class ProgressLogger(StreamingQueryListener):
    """Reports each query progress event to :func:`spark_jobs.console.emit_progress` (one
    ``{"dredge_progress": {...}}`` line in the metrics file, the lag for the batch's line).

    The last :data:`KEEP` entries stay in ``collected`` (newest last). Listener callbacks run
    on Spark's listener thread, after the batch; an error here is logged, never raised.
    """

    def __init__(self) -> None:
        self._names: dict[str, str] = {}  # query id -> its name in the progress, while it runs
        self.collected: deque[dict[str, Any]] = deque(maxlen=KEEP)
        # run ids of the query runs that terminated: a query restarted from its checkpoint
        # keeps its id, each run has its own
        self._ended: deque[str] = deque(maxlen=KEEP)
        self._changed = threading.Condition()

    def onQueryStarted(self, event: Any) -> None:  # noqa: N802 - fixed by the listener API
        name = str(event.name or event.id)  # as parse_progress names it
        self._names[str(event.id)] = name
        console.query_started(name)

    def onQueryProgress(self, event: Any) -> None:  # noqa: N802
        try:
            metrics = parse_progress(json.loads(event.progress.json))
        except Exception:  # a metrics line must never disturb the query
            LOG.warning("could not read the query progress", exc_info=True)
            return
        console.emit_progress(metrics)
        self.collected.append(metrics)  # after the report: a reader of collected sees both

    def onQueryIdle(self, event: Any) -> None:  # noqa: N802
        pass

    def onQueryTerminated(self, event: Any) -> None:  # noqa: N802
        console.query_ended(self._names.pop(str(event.id), str(event.id)))
        with self._changed:
            self._ended.append(str(event.runId))
            self._changed.notify_all()

    def wait_terminated(self, run_id: str, timeout_s: float = DRAIN_S) -> bool:
        """Block until this listener has been told that the query run ``run_id`` (a
        ``StreamingQuery.runId``) terminated (True),
        or ``timeout_s`` passed (False). Spark posts the events of a query in order, so every
        progress of the query has been handled (and printed) by then.

        ``awaitTermination`` returns before Spark's listener thread has delivered the last
        events. A driver that exits at once loses the last batch's progress line, and the JVM
        logs the failed call into the gone Python process as an ERROR."""
        with self._changed:
            return self._changed.wait_for(lambda: run_id in self._ended, timeout_s)


_REGISTERED: weakref.WeakKeyDictionary[SparkSession, ProgressLogger] = weakref.WeakKeyDictionary()


def ensure_progress_logger(spark: SparkSession) -> ProgressLogger:
    """The session's :class:`ProgressLogger`, added to ``spark.streams`` on the first call only
    (a second listener would print every line twice)."""
    listener = _REGISTERED.get(spark)
    if listener is None:
        listener = ProgressLogger()
        spark.streams.addListener(listener)
        _REGISTERED[spark] = listener
    return listener
