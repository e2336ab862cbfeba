"""Exactly-once Delta writes by a commit marker: a replayed batch (its plan read back) finds
its earlier commit and writes nothing; a first attempt skips the look."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from batch_writer_kit import writer_and_lines
from pyspark.sql import SparkSession
from spark_probe import spark_jobs_run_by

from spark_jobs import config
from spark_jobs.jobs.enrich_flows import _prepare
from spark_jobs.sinks import batch_parts, delta, flow_batch
from spark_jobs.sources.ownership import FRESHNESS_PROPERTY
from spark_jobs.transforms.output import ENRICHED_STATS_COLUMNS


def _frame(spark: SparkSession, n: int, start: int = 0):
    return spark.range(start, start + n).selectExpr("id", "cast(id % 2 as int) as part")


def _ids(spark: SparkSession, path: str) -> list[int]:
    return sorted(r.id for r in spark.read.format("delta").load(path).collect())


def _commit_infos(path: Path) -> list[dict]:
    infos = []
    for commit in sorted((path / "_delta_log").glob("*.json")):
        for line in commit.read_text().splitlines():
            if "commitInfo" in line:
                infos.append(json.loads(line)["commitInfo"])
    return infos


def test_a_replay_finds_its_commit_and_writes_nothing(spark, tmp_path: Path) -> None:
    path = str(tmp_path / "t")
    assert delta.write_batch(
        _frame(spark, 3), path, app_id="a", batch_id=5, since=-1, first_attempt=True
    )
    assert not delta.write_batch(_frame(spark, 3), path, app_id="a", batch_id=5, since=-1)
    assert _ids(spark, path) == [0, 1, 2]
    # another batch, or the same batch id of another app, is not the one that was written
    assert delta.write_batch(_frame(spark, 2, 10), path, app_id="a", batch_id=6, since=0)
    assert delta.write_batch(_frame(spark, 1, 20), path, app_id="b", batch_id=5, since=0)
    assert _ids(spark, path) == [0, 1, 2, 10, 11, 20]
    markers = [i.get("userMetadata") for i in _commit_infos(tmp_path / "t")]
    assert markers == [delta.batch_marker(a, b) for a, b in (("a", 5), ("a", 6), ("b", 5))]


def test_a_replay_after_a_crash_before_the_commit_writes(spark, tmp_path: Path) -> None:
    path = str(tmp_path / "t")
    delta.write_batch(_frame(spark, 2), path, app_id="a", batch_id=1, since=-1, first_attempt=True)
    # batch 2's plan was saved at version 0, then the driver died before its commit
    assert delta.write_batch(_frame(spark, 2, 5), path, app_id="a", batch_id=2, since=0)
    assert not delta.write_batch(_frame(spark, 2, 5), path, app_id="a", batch_id=2, since=0)
    assert _ids(spark, path) == [0, 1, 5, 6]


def test_a_first_attempt_writes_with_one_job_and_a_replay_writes_none(spark, tmp_path) -> None:
    def jobs(path: str, batch: int, **kw) -> int:
        def write() -> bool:
            return delta.write_batch(_frame(spark, 4), path, app_id="a", batch_id=batch, **kw)

        return spark_jobs_run_by(spark, write)[1]

    marker = str(tmp_path / "m")
    for batch in range(3):
        jobs(marker, batch, since=batch - 1, first_attempt=True)
    jobs(marker, 2, since=1)  # a replay: reads the history, writes nothing
    assert _ids(spark, marker) == sorted(list(range(4)) * 3)
    assert jobs(marker, 3, since=2, first_attempt=True) == 1  # the write itself


def test_a_replay_whose_commits_are_gone_says_so(spark, tmp_path: Path) -> None:
    path = tmp_path / "t"
    for batch in range(3):
        delta.write_batch(
            _frame(spark, 1, batch), str(path), app_id="a", batch_id=batch, since=batch - 1,
            first_attempt=True,
        )  # fmt: skip
    spark.sql(f"ALTER TABLE delta.`{path}` SET TBLPROPERTIES ('delta.checkpointInterval' = '1')")
    assert (path / "_delta_log" / f"{3:020d}.checkpoint.parquet").exists()
    for version in (0, 1):  # as log retention does, behind a checkpoint
        (path / "_delta_log" / f"{version:020d}.json").unlink()
    with pytest.raises(RuntimeError, match="commit 1 is gone"):
        delta.write_batch(_frame(spark, 1), str(path), app_id="a", batch_id=9, since=0)


# --- the batch writer: a whole batch replayed with its saved plan ---------------------------


def _spy_caches(monkeypatch: pytest.MonkeyPatch) -> list:
    """Every frame a batch caches (through its ``Held``)."""
    cached: list = []
    cache = batch_parts.Held.cache

    def spied(self, df):
        got = cache(self, df)
        cached.append(got)
        return got

    monkeypatch.setattr(batch_parts.Held, "cache", spied)
    return cached


def test_a_batch_replayed_with_its_plan_writes_each_table_once(
    spark, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer, t, lines = writer_and_lines(spark, tmp_path)
    cached = _spy_caches(monkeypatch)
    try:
        writer(lines, 0)
        assert cached and not any(df.is_cached for df in cached)  # released at the end
        counts = {p: spark.read.format("delta").load(p).count() for p in (t.enriched, t.quarantine)}
        assert counts == {t.enriched: 2, t.quarantine: 1}
        for table in (t.enriched, t.quarantine):  # the marker path, not Delta's txnAppId
            markers = [i.get("userMetadata") for i in _commit_infos(Path(table))]
            assert markers[-1] == delta.batch_marker("replay", 0)
        first = writer.metrics[-1]
        writer(lines, 0)  # the driver died after the commits, before the offsets: replay
        again = {p: spark.read.format("delta").load(p).count() for p in (t.enriched, t.quarantine)}
        assert again == counts
        # the replay wrote nothing, and counted the same flows without a write to observe
        keys = ("flows_final", "flows_pending", "both_attributed", "held_in", "quarantined")
        assert {k: writer.metrics[-1][k] for k in keys} == {k: first[k] for k in keys}
        assert first["flows_final"] == 2 and first["quarantined"] == 1
        # batch 1: its plan saved, then a crash before any write - the replay writes it
        plan, first_attempt = writer._plan(spark, 1)
        assert first_attempt and plan.enriched_version is not None
        assert writer._plan(spark, 1) == (plan, False)  # read back: a replay
        writer(lines, 1)
        assert spark.read.format("delta").load(t.enriched).count() == 4
        assert spark.read.format("delta").load(t.quarantine).count() == 2
    finally:
        writer.close()


def test_a_failed_batch_releases_its_caches_too(
    spark, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer, t, lines = writer_and_lines(spark, tmp_path)
    write = flow_batch.delta.write_batch

    def failing(df, path, **kwargs):
        if path == t.enriched:
            raise OSError("disk full")
        return write(df, path, **kwargs)

    monkeypatch.setattr(flow_batch.delta, "write_batch", failing)
    cached = _spy_caches(monkeypatch)
    try:
        with pytest.raises(OSError, match="disk full"):
            writer(lines, 0)
        assert cached and not any(df.is_cached for df in cached)
        monkeypatch.setattr(flow_batch.delta, "write_batch", write)
        writer(lines, 0)  # the replay (plan read back) writes the batch
        rows = spark.read.format("delta").load(t.enriched).select("srcaddr", "bytes").collect()
        assert sorted((r.srcaddr, r.bytes) for r in rows) == [
            ("198.51.100.1", 4249), ("198.51.100.3", 1000)
        ]  # fmt: skip
        bad = spark.read.format("delta").load(t.quarantine).collect()
        assert len(bad) == 1 and "99999" in bad[0].raw  # not twice
        assert writer.metrics[-1]["records_balanced"] == 1
    finally:
        writer.close()


def test_the_enriched_table_keeps_statistics_for_the_queried_columns(spark, tmp_path: Path) -> None:
    writer, t, lines = writer_and_lines(spark, tmp_path)
    try:
        writer(lines, 0)
    finally:
        writer.close()
    state = delta.table_state(spark, t.enriched)
    assert state is not None
    wanted = state.properties["delta.dataSkippingStatsColumns"].split(",")
    assert wanted == list(ENRICHED_STATS_COLUMNS)
    adds = [
        json.loads(line)["add"]
        for commit in sorted(Path(t.enriched, "_delta_log").glob("*.json"))
        for line in commit.read_text().splitlines()
        if '"add"' in line
    ]
    assert adds
    for add in adds:
        stats = json.loads(add["stats"])
        assert stats["numRecords"] >= 1
        assert set(stats["minValues"]) <= set(ENRICHED_STATS_COLUMNS)
        assert {"start_time", "srcaddr", "src_region"} <= set(stats["nullCount"])
        assert "srcport" not in stats["nullCount"]  # a raw field Delta's default would cover


def test_a_replayed_batch_overwrites_the_pending_table_once(spark, tmp_path: Path) -> None:
    writer, t, lines = writer_and_lines(spark, tmp_path)
    spark.sql(  # ownership known only up to before the flows: both flows stay pending
        f"ALTER TABLE delta.`{t.ownership}` "
        f"SET TBLPROPERTIES ('{FRESHNESS_PROPERTY}' = '2014-12-01T00:00:00Z')"
    )
    try:
        writer(lines, 0)
        pending = Path(t.pending)
        versions = len(list((pending / "_delta_log").glob("*.json")))
        assert spark.read.format("delta").load(t.pending).count() == 2
        assert spark.read.format("delta").load(t.enriched).count() == 0
        writer(lines, 0)  # replay: finds its pending commit, writes nothing
        assert len(list((pending / "_delta_log").glob("*.json"))) == versions
        assert spark.read.format("delta").load(t.pending).count() == 2
        markers = [i.get("userMetadata") for i in _commit_infos(pending)]
        assert markers.count(delta.batch_marker("replay-pending", 0)) == 1
    finally:
        writer.close()


def test_a_session_that_drops_commit_info_is_refused(spark, tmp_path: Path) -> None:
    cfg = config.from_dict({"kafka": {"enabled": False}, "paths": {"root": str(tmp_path)}})
    spark.conf.set("spark.databricks.delta.commitInfo.enabled", "false")
    try:
        with pytest.raises(SystemExit, match="batch markers"):
            _prepare(spark, cfg)
    finally:
        spark.conf.unset("spark.databricks.delta.commitInfo.enabled")
    assert not (tmp_path / "enriched").exists()
