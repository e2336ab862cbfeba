"""What the batch writer remembers per Delta version (a version never changes): a pending
version seen empty is not read again; the ownership row count is taken once per version."""

from __future__ import annotations

from typing import Any

import pytest

from spark_jobs import config
from spark_jobs.jobs.enrich_flows import targets_for
from spark_jobs.sinks import flow_batch
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


def test_a_version_seen_empty_is_not_read_again(reads):
    writer = _writer()
    assert writer._held(None, 4) == "pending@4"  # type: ignore[arg-type]
    writer._note_held(4, held_in=0)
    assert writer._held(None, 4) is None  # type: ignore[arg-type]
    assert reads == [("/r/pending", 4)]


def test_a_version_that_held_rows_is_read_every_time(reads):
    writer = _writer()
    writer._note_held(4, held_in=3)
    assert writer._held(None, 4) == "pending@4"  # type: ignore[arg-type]
    assert writer._held(None, 4) == "pending@4"  # type: ignore[arg-type]
    assert len(reads) == 2


def test_a_new_version_is_read_even_after_an_empty_one(reads):
    writer = _writer()
    writer._note_held(4, held_in=0)
    assert writer._held(None, 5) == "pending@5"  # type: ignore[arg-type]
    writer._note_held(5, held_in=2)  # the pending write of batch 4 left rows in version 5
    assert writer._held(None, 4) is None  # type: ignore[arg-type]
    assert writer._held(None, 5) == "pending@5"  # type: ignore[arg-type]


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
