"""What the batch writer skips or remembers per Delta version (a version never changes): a
pending version its plan found without data files is not read; the ownership row count is
taken once per version."""

from __future__ import annotations

from typing import Any

import pytest

from spark_jobs import config
from spark_jobs.jobs.enrich_flows import targets_for
from spark_jobs.sinks import flow_batch
from spark_jobs.sinks.delta import BatchPlan
from spark_jobs.sinks.flow_batch import FlowBatchWriter


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    seen: list[tuple[str, int]] = []

    def read_version(spark: Any, path: str, version: int) -> str:
        seen.append((path, version))
        return f"pending@{version}"

    monkeypatch.setattr(flow_batch.delta, "read_version", read_version)
    return seen


def _writer() -> FlowBatchWriter:
    cfg = config.from_dict({"kafka": {"enabled": False}, "paths": {"root": "/r"}})
    return FlowBatchWriter(stage=lambda df, cache: None, targets=targets_for(cfg, "m"))  # type: ignore[arg-type,return-value]


def _plan(pending_version: int, pending_files: int | None) -> BatchPlan:
    return BatchPlan(
        batch_id=7, ownership_version=1, pending_version=pending_version, freshness=None,
        now="2026-01-01T00:00:00", labels_version=0, enriched_version=-1,
        quarantine_version=-1, pending_files=pending_files,
    )  # fmt: skip


def test_a_pending_version_without_data_files_is_not_read(reads):
    writer = _writer()
    assert writer._held(None, _plan(4, 0)) is None  # type: ignore[arg-type]
    assert reads == []


@pytest.mark.parametrize("files", [3, None])  # None: the log did not say (read to be sure)
def test_a_pending_version_with_files_or_unknown_files_is_read(reads, files):
    writer = _writer()
    assert writer._held(None, _plan(5, files)) == "pending@5"  # type: ignore[arg-type]
    assert writer._held(None, _plan(5, files)) == "pending@5"  # type: ignore[arg-type]
    assert reads == [("/r/pending", 5), ("/r/pending", 5)]


class _Counted:
    def __init__(self, rows: int) -> None:
        self.rows = rows

    def count(self) -> int:
        return self.rows


def test_ownership_rows_are_counted_once_per_version(monkeypatch):
    seen: list[int] = []

    def read_version(spark: Any, path: str, version: int) -> _Counted:
        seen.append(version)
        return _Counted(100 * version)

    monkeypatch.setattr(flow_batch.delta, "read_version", read_version)
    writer = _writer()
    got = [writer._ownership_rows(None, v) for v in (3, 3, 4, 4)]  # type: ignore[arg-type]
    assert got == [300, 300, 400, 400]
    assert seen == [3, 4]
