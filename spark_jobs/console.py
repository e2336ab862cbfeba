"""What the jobs print: one readable line per batch on stdout; the full metrics, as JSON lines
for machines, in a file.

    dredge stream --metrics-json metrics.jsonl      # or DREDGE_METRICS_JSON=metrics.jsonl

Each line of the metrics file is one JSON object: ``{"dredge_batch": {...}}``, the batch
writer's metrics (:class:`~spark_jobs.sinks.flow_batch.FlowBatchWriter`), or
``{"dredge_progress": {...}}``, a query progress with the source lag
(:mod:`spark_jobs.sinks.progress`). Lines are appended and flushed one at a time: a reader can
follow the file while the job runs, and several drivers (restarts) can share one file.

The source lag of a batch is known only from its query progress, which Spark reports after
the batch has committed. A query that the session's progress listener saw start therefore
gets its batch line when that batch's progress arrives (or, without one, when the query
ends); any other batch (no listener, a writer called directly) gets its line at once.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import threading
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

LOG = logging.getLogger("dredge.console")
BATCH_KEY = "dredge_batch"
PROGRESS_KEY = "dredge_progress"
METRICS_ENV = "DREDGE_METRICS_JSON"
WAITING_MAX = 8  # batch lines held per query for their progress (it comes within a batch)
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
LOG_DATE_FORMAT = "%y/%m/%d %H:%M:%S"  # as Spark's own lines on the same stderr


def _count(value: object) -> str:
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else "?"


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def format_ms(ms: float) -> str:
    """Whole milliseconds under a second, seconds to one decimal under a minute, else whole
    minutes and two-digit seconds (``<m> min <ss> s``)."""
    if ms < 1000:
        return f"{ms:.0f} ms"
    if ms < 60_000:
        return f"{ms / 1000:.1f} s"
    minutes, seconds = divmod(round(ms / 1000), 60)
    return f"{minutes} min {seconds:02d} s"


def batch_line(metrics: Mapping[str, object], lag_ms: int | None = None) -> str:
    """One readable line from a batch writer's metrics (the ``dredge_batch`` fields).

    ``flows/s`` counts the flows the batch attributed (final and pending, held ones included)
    over its duration; ``attributed`` is the share of final flows with both sides attributed.
    A field that is missing reads ``?``; the lag is left out when not known. The shape:
    ``batch <id>: <lines> lines in <duration>, <rate> flows/s, <pct>% attributed, <pending>
    pending, <quarantined> quarantined[, source lag <lag>]`` (tests/unit/test_console.py).
    """
    duration = _number(metrics.get("duration_s"))
    final, pending = _number(metrics.get("flows_final")), _number(metrics.get("flows_pending"))
    rate = "?"
    if duration and final is not None:
        rate = f"{((final + (pending or 0)) / duration):,.0f}"
    pct = _number(metrics.get("pct_both_attributed"))
    parts = [
        f"{_count(metrics.get('lines_parsed'))} lines"
        + (f" in {format_ms(duration * 1000)}" if duration is not None else ""),
        f"{rate} flows/s",
        f"{pct:.1f}% attributed" if pct is not None else "no final flows",
        f"{_count(metrics.get('flows_pending'))} pending",
        f"{_count(metrics.get('quarantined'))} quarantined",
    ]
    if lag_ms is not None:
        parts.append(f"source lag {format_ms(lag_ms)}")
    return f"batch {metrics.get('batch_id', '?')}: " + ", ".join(parts)


class MetricsSink:
    """Appends ``{key: metrics}`` JSON lines to ``path`` (created with its folder on the
    first line), one flushed write per line; safe to call from several threads."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._file: IO[str] | None = None
        self._lock = threading.Lock()
        self._failed = False

    def write(self, key: str, metrics: Mapping[str, object]) -> None:
        """Append one line; a failed write is logged (once per sink), never raised: the
        metrics of a batch must not fail the batch."""
        line = json.dumps({key: metrics}, default=str) + "\n"
        with self._lock:
            try:
                if self._file is None:
                    self.path.parent.mkdir(parents=True, exist_ok=True)
                    self._file = self.path.open("a", encoding="utf-8")
                self._file.write(line)
                self._file.flush()
            except OSError as err:
                if not self._failed:
                    self._failed = True
                    LOG.warning("metrics file %s: %s (lines are not written)", self.path, err)

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None


class Console:
    """Batch lines to ``out`` (stdout by default) and metrics to the sink: the configured one,
    else one for ``$DREDGE_METRICS_JSON``, else none."""

    def __init__(self, out: IO[str] | None = None) -> None:
        self.out = out
        self.sink: MetricsSink | None = None  # set by configure()
        self._env_sink: MetricsSink | None = None
        self._watched: Counter[str] = Counter()  # runs per query the listener reports on
        self._waiting: dict[str, dict[int, Mapping[str, object]]] = {}
        self._lock = threading.Lock()

    def _metrics_sink(self) -> MetricsSink | None:
        if self.sink is not None:
            return self.sink
        path = os.environ.get(METRICS_ENV)
        if not path:
            return None
        if self._env_sink is None or self._env_sink.path != Path(path):
            if self._env_sink is not None:
                self._env_sink.close()
            self._env_sink = MetricsSink(path)
        return self._env_sink

    def _print(self, line: str) -> None:
        print(line, file=self.out or sys.stdout, flush=True)

    def emit_batch(self, metrics: Mapping[str, object], query: str | None = None) -> None:
        """Write a batch's metrics to the sink, and its line now or once its progress (with
        the source lag) has come (``query`` is the streaming query's name)."""
        sink = self._metrics_sink()
        if sink is not None:
            sink.write(BATCH_KEY, metrics)
        batch_id = metrics.get("batch_id")
        with self._lock:
            if query is None or not self._watched[query] or not isinstance(batch_id, int):
                late = [metrics]
            else:
                waiting = self._waiting.setdefault(query, {})
                waiting[batch_id] = metrics
                # more than that waiting: the oldest one's progress got lost
                late = [waiting.pop(min(waiting)) for _ in range(len(waiting) - WAITING_MAX)]
        for m in late:
            self._print(batch_line(m))

    def emit_progress(self, progress: Mapping[str, Any]) -> None:
        """Write a query progress (:func:`~spark_jobs.sinks.progress.parse_progress` fields)
        to the sink, and print the line of its batch if that is waiting for it."""
        sink = self._metrics_sink()
        if sink is not None:
            sink.write(PROGRESS_KEY, progress)
        query, batch_id = progress.get("query"), progress.get("batch_id")
        if not isinstance(batch_id, int):
            return
        with self._lock:
            metrics = self._waiting.get(str(query), {}).pop(batch_id, None)
        if metrics is not None:
            self._print(batch_line(metrics, progress.get("source_lag_ms")))

    def query_started(self, query: str) -> None:
        """The progress listener saw ``query`` start: its batch lines wait for the lag."""
        with self._lock:
            self._watched[query] += 1

    def query_ended(self, query: str) -> None:
        """``query`` ended: print the lines still waiting (their progress did not come)."""
        with self._lock:
            self._watched[query] -= 1
            if self._watched[query] <= 0:
                del self._watched[query]
            left = self._waiting.pop(query, {})
        for batch_id in sorted(left):
            self._print(batch_line(left[batch_id]))

    def close(self) -> None:
        for sink in (self.sink, self._env_sink):
            if sink is not None:
                sink.close()


CONSOLE = Console()


def emit_batch(metrics: Mapping[str, object], query: str | None = None) -> None:
    """The batch writer's one call per batch: metrics to the metrics file, a line to stdout."""
    CONSOLE.emit_batch(metrics, query)


def emit_progress(progress: Mapping[str, Any]) -> None:
    """The progress listener's one call per progress event."""
    CONSOLE.emit_progress(progress)


def query_started(query: str) -> None:
    """The progress listener saw ``query`` start (see :meth:`Console.query_started`)."""
    CONSOLE.query_started(query)


def query_ended(query: str) -> None:
    """``query`` ended (see :meth:`Console.query_ended`)."""
    CONSOLE.query_ended(query)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The console flags of a job's command line."""
    parser.add_argument(
        "--metrics-json",
        metavar="PATH",
        help=f"append each batch's metrics as JSON lines to PATH (default: ${METRICS_ENV})",
    )


def configure(metrics_json: str | None = None, log_level: int = logging.INFO) -> None:
    """Set up a job's console: the metrics file (``metrics_json``, else ``$DREDGE_METRICS_JSON``,
    else none) and logging (:func:`configure_logging` at ``log_level``)."""
    if metrics_json:
        if CONSOLE.sink is not None:
            CONSOLE.sink.close()
        CONSOLE.sink = MetricsSink(metrics_json)
    configure_logging(log_level)


def configure_logging(level: int = logging.INFO) -> None:
    """Dredge's own loggers (``dredge.*``, ``spark_jobs.*``) at ``level``, everything else at
    WARNING, on stderr. py4j logs every call into Python (a callback per batch and per
    listener event) at INFO: kept at WARNING even when the root logger is set lower. A root
    logger that already has handlers (pytest, a notebook) keeps them."""
    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(LOG_FORMAT, LOG_DATE_FORMAT))
        root.addHandler(handler)
        root.setLevel(logging.WARNING)
    for name in ("dredge", "spark_jobs"):
        logging.getLogger(name).setLevel(level)
    logging.getLogger("py4j").setLevel(logging.WARNING)
