"""The enrichment job writes a ``dredge_progress`` metrics line per batch carrying the Kinesis
source lag, and prints the lag in the batch's console line (kinesalite -> dredge-kinesis -> the
job's foreachBatch; Kafka off to keep it short)."""

from __future__ import annotations

import json
import time
import uuid

import pytest
from _flowkit import (
    T0,
    create_stream,
    envelope,
    flow_line,
    kinesis_client,
    overrides,
    put,
    write_snapshot,
)

from spark_jobs import config, console
from spark_jobs.console import PROGRESS_KEY
from spark_jobs.jobs.enrich_flows import run_stream
from spark_jobs.sinks.ownership import apply_observation, write_cidr_labels
from spark_jobs.sinks.progress import ensure_progress_logger
from spark_jobs.sources.ownership import cidr_labels_df, label_row, read_snapshot_observation

pytestmark = pytest.mark.integration
WAIT_S = 60  # listener events arrive asynchronously after the batch


@pytest.fixture()
def small_job(spark, tmp_path):
    run = uuid.uuid4().hex[:8]
    stream = create_stream(2)
    lines = [flow_line("192.0.2.10", "192.0.2.20", T0 + 60 * i) for i in range(4)]
    put(stream, [envelope(lines[:2]), envelope(lines[2:]), envelope(lines[:1])])
    settings = overrides(tmp_path, stream, run, "available_now")
    settings["kafka"] = {"enabled": False}
    settings["source"] = {**settings["source"], "max_records_per_batch": 2}  # >= 2 batches
    cfg = config.load("conf/local.yaml", settings)
    snapshot = write_snapshot(
        tmp_path, "s0", "2026-01-01T00:00:00Z", [("192.0.2.10", "api", "us-east-1", "us-east-1a")]
    )
    apply_observation(
        spark, cfg.paths.resolve("ownership"), read_snapshot_observation(spark, [snapshot])
    )
    write_cidr_labels(
        cidr_labels_df(spark, [label_row("0.0.0.0/0", "internet", None, None, "internet")]),
        cfg.paths.resolve("cidr_labels"),
    )
    yield cfg
    kinesis_client().delete_stream(StreamName=stream)


def _entries(listener, query: str) -> list[dict]:
    return [m for m in list(listener.collected) if m["query"] == query]


def test_each_batch_logs_progress_with_the_source_lag(
    spark, small_job, capsys, tmp_path, monkeypatch
):
    metrics = tmp_path / "metrics.jsonl"
    monkeypatch.setenv(console.METRICS_ENV, str(metrics))
    cfg = small_job
    query = cfg.stream.query_name
    writer = run_stream(spark, cfg)
    listener = ensure_progress_logger(spark)
    assert ensure_progress_logger(spark) is listener  # one listener per session
    batches = {m["batch_id"] for m in writer.metrics}
    deadline = time.monotonic() + WAIT_S
    while {m["batch_id"] for m in _entries(listener, query)} < batches:
        assert time.monotonic() < deadline, f"no progress for batches {batches}"
        time.sleep(0.2)  # bounded poll of the listener's thread, not synchronisation by sleep
    entries = _entries(listener, query)
    assert len(batches) >= 2
    assert sorted(m["batch_id"] for m in entries) == sorted(batches)  # once each: no 2nd listener
    assert sum(m["num_input_rows"] for m in entries) == 3  # Kinesis records, not flow lines
    for entry in entries:
        assert isinstance(entry["source_lag_ms"], int) and entry["source_lag_ms"] >= 0
        assert entry["batch_duration_ms"] > 0
    written = [
        json.loads(line)[PROGRESS_KEY]
        for line in metrics.read_text().splitlines()
        if line.startswith('{"' + PROGRESS_KEY)
    ]
    assert [p for p in written if p["query"] == query] == entries
    # one console line per batch, each with the lag of its own progress
    lag = {e["batch_id"]: e["source_lag_ms"] for e in entries}
    printed = [x for x in capsys.readouterr().out.splitlines() if x.startswith("batch ")]
    assert sorted(printed) == sorted(
        console.batch_line(m, lag[m["batch_id"]]) for m in writer.metrics
    )
