"""The batch writer runs the Delta and Kafka sinks side by side (``concurrently``)."""

from __future__ import annotations

import threading

import pytest

from spark_jobs.sinks.batch_parts import concurrently

WAIT_S = 20.0


def test_both_sinks_run_at_the_same_time():
    # Each waits for the other to have started: run one after the other, both would time out.
    delta_started, kafka_started = threading.Event(), threading.Event()
    seen: dict[str, bool] = {}

    def delta() -> None:
        delta_started.set()
        seen["delta saw kafka"] = kafka_started.wait(WAIT_S)

    def kafka() -> None:
        kafka_started.set()
        seen["kafka saw delta"] = delta_started.wait(WAIT_S)

    concurrently(delta, kafka)
    assert seen == {"delta saw kafka": True, "kafka saw delta": True}


def test_the_first_ones_result_is_returned_once_all_are_done():
    done: list[str] = []
    assert concurrently(lambda: "written", lambda: done.append("other")) == "written"
    assert done == ["other"]


def test_an_error_in_the_thread_is_raised_after_the_other_sink_finished():
    done: list[str] = []

    def delta() -> None:
        done.append("delta")

    def kafka() -> None:
        raise RuntimeError("broker down")

    with pytest.raises(RuntimeError, match="broker down"):
        concurrently(delta, kafka)
    assert done == ["delta"]


def test_an_error_in_the_first_sink_waits_for_the_thread():
    release = threading.Event()
    done: list[str] = []

    def delta() -> None:
        release.set()
        raise ValueError("commit failed")

    def kafka() -> None:
        release.wait(WAIT_S)
        done.append("kafka")

    with pytest.raises(ValueError, match="commit failed"):
        concurrently(delta, kafka)
    assert done == ["kafka"]  # joined before the error left the batch


def test_no_other_sink_runs_only_the_first():
    done: list[str] = []
    concurrently(lambda: done.append("delta"))
    assert done == ["delta"]


def test_the_thread_keeps_the_batchs_spark_local_properties(spark):
    sc = spark.sparkContext
    sc.setLocalProperty("dredge.test.batch", "7")
    seen: list[str | None] = []
    try:
        concurrently(lambda: None, lambda: seen.append(sc.getLocalProperty("dredge.test.batch")))
    finally:
        sc.setLocalProperty("dredge.test.batch", None)  # type: ignore[arg-type]
    assert seen == ["7"]


def test_when_both_fail_the_first_error_is_raised_and_the_other_logged(caplog):
    kafka_failed = threading.Event()

    def delta() -> None:
        kafka_failed.wait(WAIT_S)  # the thread's error comes first in time
        raise ValueError("commit failed")

    def kafka() -> None:
        kafka_failed.set()
        raise RuntimeError("broker down")

    with caplog.at_level("ERROR", logger="dredge.batch"), pytest.raises(ValueError, match="commit"):
        concurrently(delta, kafka)
    assert any("broker down" in r.getMessage() for r in caplog.records)
