"""Batch plans: saved once per batch id, returned unchanged on replay (files or Delta)."""

from __future__ import annotations

from pathlib import Path

import pytest

from spark_jobs.sinks.delta import BatchPlan, is_uri, load_or_create_plan


def _maker(version: int, calls: list[int]):
    def make(batch_id: int) -> BatchPlan:
        calls.append(batch_id)
        return BatchPlan(
            batch_id=batch_id,
            ownership_version=version,
            pending_version=2,
            freshness="2026-01-01T00:00:00+00:00",
            now="2026-01-01T00:05:00+00:00",
            labels_version=1,
            enriched_version=-1,
            quarantine_version=3,
            broadcast_owners=True,
            scope_freshness={"111122223333/us-east-1": "2026-01-01T00:00:00+00:00"},
        )

    return make


@pytest.mark.parametrize("as_uri", [False, True], ids=["local-json", "delta-table"])
def test_a_replayed_batch_gets_its_first_plan(spark, tmp_path: Path, as_uri: bool) -> None:
    folder = f"file://{tmp_path}/plans" if as_uri else str(tmp_path / "plans")
    calls: list[int] = []
    first = load_or_create_plan(folder, 7, _maker(5, calls), spark)
    replay = load_or_create_plan(folder, 7, _maker(99, calls), spark)  # table moved on since
    other = load_or_create_plan(folder, 8, _maker(99, calls), spark)
    assert calls == [7, 8]
    assert replay == first and replay.ownership_version == 5
    assert other.ownership_version == 99
    assert replay.scope_freshness_times == {"111122223333/us-east-1": first.freshness_time}
    assert (tmp_path / "plans" / "_delta_log").is_dir() == as_uri


def test_uri_detection() -> None:
    assert is_uri("s3://bucket/checkpoints/x-plans")
    assert is_uri("dbfs:/checkpoints/x-plans")
    assert is_uri("abfss://c@acct.dfs.core.windows.net/x")
    assert not is_uri("/tmp/checkpoints/x-plans")
    assert not is_uri("data/checkpoints/x-plans")


def test_delta_plans_need_a_session(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="SparkSession"):
        load_or_create_plan(f"file://{tmp_path}/p", 1, _maker(1, []))


@pytest.mark.parametrize("as_uri", [False, True], ids=["local-json", "delta-table"])
def test_only_the_latest_plans_are_kept(spark, tmp_path: Path, monkeypatch, as_uri: bool) -> None:
    from spark_jobs.sinks import delta

    monkeypatch.setattr(delta, "PLANS_KEPT", 3)
    folder = f"file://{tmp_path}/plans" if as_uri else str(tmp_path / "plans")
    for batch in range(8):
        load_or_create_plan(folder, batch, _maker(batch, []), spark)
    if as_uri:
        rows = spark.read.format("delta").load(folder).collect()
        kept = sorted(r.batch_id for r in rows)
        assert kept == [3, 4, 5, 6, 7]  # pruned at batch 6 (every 3rd), 7 added since
    else:
        kept = sorted(int(p.stem) for p in (tmp_path / "plans").glob("*.json"))
        assert kept == [5, 6, 7]
    calls: list[int] = []
    replay = load_or_create_plan(folder, 7, _maker(99, calls), spark)
    assert calls == [] and replay.ownership_version == 7  # the batch a replay needs is there
