"""Small batches run with adaptive query execution off, large ones with the session's own
setting, and the batch puts the setting back (``AdaptiveSwitch``)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from batch_writer_kit import writer_and_lines
from pyspark.sql import SparkSession

from spark_jobs.sinks import flow_batch
from spark_jobs.sinks.batch_parts import AQE, SHUFFLE_PARTITIONS, AdaptiveSwitch, Held


@pytest.fixture
def aqe_on(spark: SparkSession):
    """The job's settings as a session might have them: AQE on, 5 shuffle partitions (the
    test session has 2, the small-batch value)."""
    before = {key: spark.conf.get(key) for key in (AQE, SHUFFLE_PARTITIONS)}
    spark.conf.set(AQE, "true")
    spark.conf.set(SHUFFLE_PARTITIONS, "5")
    try:
        yield
    finally:
        for key, value in before.items():
            spark.conf.set(key, value)


def _spy(monkeypatch: pytest.MonkeyPatch, spark: SparkSession) -> dict[str, list[str]]:
    """What AQE was set to while each batch's stage counts and enriched counts ran, and
    whether the cached attributed rows were planned adaptively (``plan``) - the plan is made
    by ``persist`` in the stage, under the previous batch's size - and how often a batch
    planned them again (``replans``)."""
    seen: dict[str, list[str]] = {"stage": [], "enriched": [], "plan": [], "replans": []}
    stage, enriched, replan = flow_batch.stage_counts, flow_batch.enriched_counts, Held.replan

    def stage_spy(*inputs):
        seen["stage"].append(spark.conf.get(AQE))
        return stage(*inputs)

    def enriched_spy(df):
        seen["enriched"].append(spark.conf.get(AQE))
        seen.setdefault("partitions", []).append(spark.conf.get(SHUFFLE_PARTITIONS))
        cached = df._jdf.queryExecution().executedPlan().toString()  # with the cached plan
        seen["plan"].append("adaptive" if "AdaptiveSparkPlan" in cached else "fixed")
        return enriched(df)

    def replan_spy(self, df):
        seen["replans"].append(spark.conf.get(AQE))
        return replan(self, df)

    monkeypatch.setattr(flow_batch, "stage_counts", stage_spy)
    monkeypatch.setattr(flow_batch, "enriched_counts", enriched_spy)
    monkeypatch.setattr(Held, "replan", replan_spy)
    return seen


def _writer(spark, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, small_lines: int):
    """The kit's writer with ``small_batch_lines`` set, its targets, lines and the spy."""
    writer, t, lines = writer_and_lines(spark, tmp_path)
    return (
        replace(writer, targets=replace(t, small_batch_lines=small_lines)),
        t,
        lines,
        _spy(monkeypatch, spark),
    )


def test_a_small_batch_runs_without_aqe_and_puts_it_back(
    spark, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, aqe_on
) -> None:
    writer, t, lines, seen = _writer(spark, tmp_path, monkeypatch, 100)
    writer(lines, 0)
    writer(lines, 1)
    # batch 0: size unknown during its stage (session setting, so its attribution is planned
    # adaptively, then planned again once it is known small); batch 1 is sized by batch 0
    # from the start and planned once
    assert seen == {"stage": ["true", "false"], "enriched": ["false", "false"],
                    "partitions": ["2", "2"], "plan": ["fixed", "fixed"],
                    "replans": ["false"]}  # fmt: skip
    assert spark.conf.get(AQE) == "true"  # put back after each batch
    assert spark.conf.get(SHUFFLE_PARTITIONS) == "5"
    assert [m["adaptive"] for m in writer.metrics] == [False, False]
    counts = spark.read.format("delta").load(t.enriched).count()
    assert counts == 4  # two flows per batch, written as with AQE on


def test_a_large_batch_after_a_small_one_is_planned_again_adaptively(
    spark, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, aqe_on
) -> None:
    writer, _, lines, seen = _writer(spark, tmp_path, monkeypatch, 4)
    writer(lines, 0)  # 3 lines: small
    writer(lines.unionByName(lines), 1)  # 6 lines, sized small by batch 0 until counted
    assert seen["plan"] == ["fixed", "adaptive"]
    assert seen["replans"] == ["false", "true"]  # batch 0 (unknown size), batch 1 (large)
    assert seen["enriched"] == ["false", "true"] and seen["partitions"] == ["2", "5"]
    assert [m["flows_final"] for m in writer.metrics] == [2, 4]


@pytest.mark.parametrize(
    ("small_lines", "metric"),
    [(2, {"adaptive": True}), (0, {})],  # 3 lines: a large batch; 0: the switch is off
)
def test_a_large_batch_or_a_zero_limit_keeps_the_session_setting(
    spark, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, aqe_on, small_lines, metric
) -> None:
    writer, _, lines, seen = _writer(spark, tmp_path, monkeypatch, small_lines)
    writer(lines, 0)
    assert seen == {"stage": ["true"], "enriched": ["true"], "partitions": ["5"],
                    "plan": ["adaptive"], "replans": []}  # fmt: skip
    assert {k: v for k, v in writer.metrics[0].items() if k == "adaptive"} == metric


def test_a_failed_batch_puts_aqe_back(
    spark, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, aqe_on
) -> None:
    writer, t, lines = writer_and_lines(spark, tmp_path)
    writer = replace(writer, targets=replace(t, small_batch_lines=100))

    def broken(df):
        assert spark.conf.get(AQE) == "false"
        raise RuntimeError("attribution failed")

    monkeypatch.setattr(flow_batch, "enriched_counts", broken)
    with pytest.raises(RuntimeError, match="attribution failed"):
        writer(lines, 0)
    assert spark.conf.get(AQE) == "true" and spark.conf.get(SHUFFLE_PARTITIONS) == "5"


def test_switch_follows_the_size_and_leaves_an_unknown_size_alone(spark) -> None:
    key_was = spark.conf.get(AQE)
    spark.conf.unset(AQE)
    try:
        default = spark.conf.get(AQE)
        switch = AdaptiveSwitch(spark, 10)
        switch.size(5)
        assert spark.conf.get(AQE) == "false" and switch.adaptive is False
        switch.size(50)
        assert spark.conf.get(AQE) == default and switch.adaptive is (default == "true")
        switch.size(None)  # unknown size: left as it is
        assert spark.conf.get(AQE) == default
        switch.restore()
        assert spark.conf.get(AQE) == default
    finally:
        spark.conf.set(AQE, key_was)
