"""The streaming benchmarks (latency, throughput vs boto3) run the real job end to end on a
tiny input against kinesalite and Kafka and write consistent figures: everything sent was
measured, percentiles are ordered, the JSON file holds the returned result. How many flows a
timed load sent and how fast anything ran depend on the machine's load: no test bounds them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bench import latency, latency_floor, stream

pytestmark = [pytest.mark.integration, pytest.mark.timeout(1200)]


def _ordered(p: dict[str, float]) -> bool:
    return 0 < p["p50"] <= p["p95"] <= p["p99"] <= p["max"]


def test_latency_bench_tiny(spark: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "latency.json"
    result = latency.main(["--rate", "40", "--seconds", "3", "--shards", "1", "--out", str(out)])
    assert json.loads(out.read_text()) == result
    assert result["drained"] is True
    assert result["trigger"] == "1 second"
    assert result["flows_pending"] == 0  # ownership is fresher than every flow
    assert result["flows_measured"] == result["flows_sent"] >= 1  # every flow reached Delta
    assert result["kafka_flows_unmatched"] == 0  # every batch's flows, each once
    assert 0 < result["kafka_flows_measured"] <= result["flows_measured"]
    sent = result["flows_sent"] + result["warmup_flows_not_measured"]
    assert 0 < result["kafka_messages"] <= sent  # per-minute rollups, the warm-up's too
    assert _ordered(result["delta_latency_s"])
    assert _ordered(result["kafka_latency_s"])
    assert result["batches"] >= 1 and _ordered(result["batch_duration_s"])
    assert "bench.latency:" in capsys.readouterr().out


def test_stream_bench_tiny(spark: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "stream.json"
    # no warm-up drain: it is the measured drain's own function on fewer envelopes
    result = stream.main(
        ["--flows", "1500", "--shards", "2", "--warm-every", "0", "--out", str(out)]
    )
    assert json.loads(out.read_text()) == result
    assert result["flow_lines"] >= 1000
    assert result["boto3_drain"]["records"] == result["records"]
    assert result["boto3_drain_gunzip_json"]["flow_lines"] == result["flow_lines"]
    job = result["dredge_stream"]
    assert job["flow_lines"] == result["flow_lines"]  # the job drained every line
    assert job["flows_final"] == result["flow_lines"]
    assert 0 < job["kafka_published"] <= job["flows_final"]
    assert job["flows_per_s"] > 0 and result["boto3_drain"]["flows_per_s"] > 0
    assert result["ratio_vs_boto3"] > 0
    backfill = result["dredge_backfill"]  # the same lines from files, in the same session
    assert backfill["flow_lines"] == result["flow_lines"] and backfill["flows_per_s"] > 0
    assert result["ratio_vs_backfill"] == pytest.approx(
        job["flows_per_s"] / backfill["flows_per_s"], rel=0.02
    )  # the rates are rounded to whole flows/s
    assert "bench.stream:" in capsys.readouterr().out


def test_latency_floor_bench_tiny(
    spark: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "latency_floor.json"
    result = latency_floor.main(
        ["--rate", "40", "--seconds", "3", "--shards", "1", "--out", str(out)]
    )
    assert json.loads(out.read_text()) == result
    assert result["drained"] is True
    # every record sent after the warm-up reached Delta and was measured (a record holds one
    # or more flow lines)
    assert result["flows_sent"] >= result["records_measured"] == result["records_sent"] >= 1
    # a record is visible only after the batch that read it (p50 > 0)
    assert _ordered(result["delta_latency_s"])
    assert result["batches"] >= 1 and _ordered(result["batch_duration_s"])
    rate = result["rate_source"]
    # every row the rate source numbered in the measured window is in the table, however
    # slow the batches were: the query drains past the window
    assert rate["drained"] is True
    assert rate["rows_measured"] == rate["rows_due"] >= 1
    assert _ordered(rate["delta_latency_s"]) and _ordered(rate["batch_duration_s"])
    assert "bench.latency_floor:" in capsys.readouterr().out
