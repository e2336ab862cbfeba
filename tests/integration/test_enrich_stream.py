"""The enrichment job end to end on real local services: kinesalite -> Spark -> Delta + Kafka,
twice over the same input (the second run must add nothing), with values checked; every batch
writes a ``dredge_progress`` metrics line carrying the Kinesis source lag, and prints the lag in
its console line."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC

import pytest
from _flowkit import (
    T0,
    committed_messages,
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


FLOWS = [
    # api (192.0.2.10) -> db (192.0.2.20), cross-region, before and after the IP moves
    ("f_api_db", flow_line("192.0.2.10", "192.0.2.20", T0 + 60)),
    ("f_web_db", flow_line("192.0.2.10", "192.0.2.20", T0 + 700, eni="eni-web1")),
    ("f_s3", flow_line("192.0.2.20", "198.51.100.9", T0 + 120, eni="eni-db1")),
    ("f_future", flow_line("192.0.2.20", "192.0.2.10", T0 + 5000, eni="eni-db1")),
    ("f_gap", flow_line("192.0.2.10", "192.0.2.20", T0 + 420)),
    ("f_nodata", f"2 111122223333 eni-db1 - - - - - - - {T0 + 60} {T0 + 120} - NODATA"),
]
BAD_LINE = "2 111122223333 eni-x 192.0.2.10 192.0.2.20 99999 1 6 1 1 1 2 ACCEPT OK"


@pytest.fixture()
def pipeline(spark, tmp_path):
    run = uuid.uuid4().hex[:8]
    stream = create_stream(2)
    records = [
        envelope([m for _, m in FLOWS[:3]]),
        envelope([m for _, m in FLOWS[3:]] + [BAD_LINE]),
        envelope([], "CONTROL_MESSAGE"),
        b"not gzip at all",
    ]
    put(stream, records)
    settings = overrides(tmp_path, stream, run, "available_now")
    settings["source"] = {**settings["source"], "max_records_per_batch": 2}  # >= 2 batches
    cfg = config.load("conf/local.yaml", settings)
    own = cfg.paths.resolve("ownership")
    # api holds .10 at minutes 0 and 5, web from minute 10 (the change happened somewhere in
    # (5, 10]: a flow at minute 7 must stay unattributed); db is in eu-west-1
    for name, at, app, az in (
        ("s0", "2026-01-01T00:00:00Z", "api", "us-east-1a"),
        ("s0b", "2026-01-01T00:05:00Z", "api", "us-east-1a"),
        ("s1", "2026-01-01T00:10:00Z", "web", "us-east-1b"),
        ("s2", "2026-01-01T00:20:00Z", "web", "us-east-1b"),
    ):
        rows = [
            ("192.0.2.10", app, "us-east-1", az),
            ("192.0.2.20", "db", "eu-west-1", "eu-west-1a"),
        ]
        apply_observation(
            spark, own, read_snapshot_observation(spark, [write_snapshot(tmp_path, name, at, rows)])
        )
    write_cidr_labels(
        cidr_labels_df(
            spark,
            [
                label_row("198.51.100.0/24", "aws_service", "S3", "us-east-1", "AWS:S3"),
                label_row("0.0.0.0/0", "internet", None, None, "internet"),
            ],
        ),
        cfg.paths.resolve("cidr_labels"),
    )
    yield cfg
    kinesis_client().delete_stream(StreamName=stream)


def read_kafka(spark, topic):
    return [
        json.loads(r.value)
        for r in (
            committed_messages(spark, topic).selectExpr("CAST(value AS STRING) value").collect()
        )
    ]


def _progress(listener, query: str) -> list[dict]:
    return [m for m in list(listener.collected) if m["query"] == query]


def _check_progress(spark, cfg, writer, metrics, printed: list[str]) -> None:
    """One progress entry per batch, with its source lag, in the listener and the metrics
    file; one console line per batch showing that lag."""
    query = cfg.stream.query_name
    listener = ensure_progress_logger(spark)
    assert ensure_progress_logger(spark) is listener  # one listener per session
    batches = {m["batch_id"] for m in writer.metrics}
    deadline = time.monotonic() + WAIT_S
    while {m["batch_id"] for m in _progress(listener, query)} < batches:
        assert time.monotonic() < deadline, f"no progress for batches {batches}"
        time.sleep(0.2)  # bounded poll of the listener's thread, not synchronisation by sleep
    entries = _progress(listener, query)
    assert len(batches) >= 2
    assert sorted(m["batch_id"] for m in entries) == sorted(batches)  # once each: no 2nd listener
    assert sum(m["num_input_rows"] for m in entries) == 4  # Kinesis records, not flow lines
    for entry in entries:
        assert isinstance(entry["source_lag_ms"], int) and entry["source_lag_ms"] >= 0
        assert entry["batch_duration_ms"] > 0
    written = [
        json.loads(line)[PROGRESS_KEY]
        for line in metrics.read_text().splitlines()
        if line.startswith('{"' + PROGRESS_KEY)
    ]
    assert [p for p in written if p["query"] == query] == entries
    lag = {e["batch_id"]: e["source_lag_ms"] for e in entries}
    shown = [x for x in printed if x.startswith("batch ")]
    assert sorted(shown) == sorted(
        console.batch_line(m, lag[m["batch_id"]]) for m in writer.metrics
    )


def test_stream_job_attributes_and_writes_each_flow_once(
    spark, pipeline, capsys, tmp_path, monkeypatch
):
    cfg = pipeline
    metrics = tmp_path / "metrics.jsonl"
    monkeypatch.setenv(console.METRICS_ENV, str(metrics))
    first = run_stream(spark, cfg)
    _check_progress(spark, cfg, first, metrics, capsys.readouterr().out.splitlines())
    run_stream(spark, cfg)  # same checkpoint: nothing new
    enriched = spark.read.format("delta").load(cfg.paths.resolve("enriched"))
    rows = {
        (r.srcaddr, r.dstaddr, int(r.start_time.replace(tzinfo=UTC).timestamp())): r
        for r in enriched.collect()
        if r.log_status == "OK"
    }
    assert enriched.count() == 5  # 4 final traffic flows + 1 NODATA; the future flow is pending
    api_db = rows[("192.0.2.10", "192.0.2.20", T0 + 60)]
    assert (api_db.src_app, api_db.dst_app, api_db.cross_region) == ("api", "db", True)
    web_db = rows[("192.0.2.10", "192.0.2.20", T0 + 700)]
    assert (web_db.src_app, web_db.src_az, web_db.dst_region) == ("web", "us-east-1b", "eu-west-1")
    gap = rows[("192.0.2.10", "192.0.2.20", T0 + 420)]
    assert (gap.src_attribution_status, gap.src_app, gap.src_label) == (
        "unattributed",
        None,
        "internet",
    )
    assert (gap.dst_app, gap.cross_region) == ("db", None)
    s3 = rows[("192.0.2.20", "198.51.100.9", T0 + 120)]
    assert (s3.dst_attribution_status, s3.dst_label, s3.dst_kind) == (
        "unattributed",
        "AWS:S3",
        "aws_service",
    )
    pending = spark.read.format("delta").load(cfg.paths.resolve("pending")).collect()
    assert [(p.srcaddr, p.dstaddr) for p in pending] == [("192.0.2.20", "192.0.2.10")]
    quarantine = spark.read.format("delta").load(cfg.paths.resolve("quarantine")).collect()
    assert sorted(q.reason for q in quarantine) == ["bad_gzip", "port_range"]
    messages = read_kafka(spark, cfg.kafka.topic)
    # one message per minute and dimensions: the four final flows start in four minutes
    assert len(messages) == 4  # NODATA is not traffic; pending is not final
    by_time = {m["timestamp"]: m for m in messages}
    assert by_time[(T0 + 60) * 1000]["src_app"] == "api"
    assert by_time[(T0 + 660) * 1000]["src_app"] == "web"  # T0 + 700 s: its minute
    assert [m["flows"] for m in messages] == [1] * 4
    assert {m["batch"] for m in messages} <= {m["batch_id"] for m in first.metrics}
    totals = first.metrics
    assert sum(m["control_messages"] for m in totals) == 1
    assert sum(m["records_in"] for m in totals) == 4
    # records in = records with lines + bad records + control messages, in every batch
    assert all(m["records_balanced"] == 1 for m in totals)
    assert [sum(m[k] for m in totals) for k in ("records_with_lines", "bad_records")] == [2, 1]
    assert sum(m["bad_lines"] for m in totals) == 1
