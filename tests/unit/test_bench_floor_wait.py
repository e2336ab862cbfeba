"""bench.latency_floor's drain of the rate source: it waits for a batch with rows that was
triggered after the measured window, and reports a query that never gets there."""

from __future__ import annotations

from typing import Any

import pytest

from bench import latency_floor


class _Query:
    """A stand-in for a StreamingQuery: progress reports appear one per poll."""

    def __init__(self, reports: list[dict[str, Any]], error: Exception | None = None):
        self._pending, self.recentProgress = list(reports), []  # type: list[dict[str, Any]]
        self._error = error

    def exception(self) -> Exception | None:
        if self._pending:
            self.recentProgress.append(self._pending.pop(0))
        return self._error


def _report(iso: str, rows: int) -> dict[str, Any]:
    return {"timestamp": iso, "numInputRows": rows}


def test_epoch_reads_spark_progress_timestamps() -> None:
    assert latency_floor._epoch("1970-01-01T00:00:10.500Z") == 10.5
    assert latency_floor._epoch("2026-12-02T06:00:00.000Z") == 1796191200.0


def test_waits_for_a_batch_with_rows_triggered_after_the_moment(monkeypatch: Any) -> None:
    monkeypatch.setattr(latency_floor.time, "sleep", lambda _s: None)
    q = _Query([
        _report("1970-01-01T00:00:09.000Z", 40),  # before the moment
        _report("1970-01-01T00:00:11.000Z", 0),  # after, but empty
        _report("1970-01-01T00:00:12.000Z", 40),  # this one
        _report("1970-01-01T00:00:13.000Z", 40),
    ])  # fmt: skip
    assert latency_floor._wait_batch_after(q, 10.0, 5.0) is True
    assert len(q.recentProgress) == 3  # stopped polling at the first batch that counts


def test_gives_up_after_the_timeout(monkeypatch: Any) -> None:
    q = _Query([_report("1970-01-01T00:00:09.000Z", 40)])
    assert latency_floor._wait_batch_after(q, 10.0, 0.3) is False


def test_a_failed_query_raises() -> None:
    q = _Query([], error=ValueError("boom"))
    with pytest.raises(RuntimeError, match="rate floor query failed: boom"):
        latency_floor._wait_batch_after(q, 0.0, 5.0)
