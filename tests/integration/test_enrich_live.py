"""A running query sees ownership updates at the next batch, and pending flows resolve once
ownership catches up."""

from __future__ import annotations

import time
import uuid

import pytest
from _flowkit import T0, create_stream, envelope, flow_line, overrides, put, write_snapshot

from spark_jobs import config
from spark_jobs.jobs.enrich_flows import start_stream
from spark_jobs.sinks.ownership import apply_observation, write_cidr_labels
from spark_jobs.sources.ownership import cidr_labels_df, label_row, read_snapshot_observation

pytestmark = pytest.mark.integration


def wait_for(predicate, what: str, timeout: float = 480.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.5)
    pytest.fail(f"timed out waiting for {what}")


def test_pending_resolves_after_ownership_update_while_query_runs(spark, tmp_path):
    run = uuid.uuid4().hex[:8]
    stream = create_stream(1)
    cfg = config.load("conf/local.yaml", overrides(tmp_path, stream, run, "processing_time"))
    own = cfg.paths.resolve("ownership")

    def observe(name: str, at: str, app: str) -> None:
        snap = write_snapshot(
            tmp_path,
            name,
            at,
            [
                ("192.0.2.10", app, "us-east-1", "us-east-1a"),
                ("192.0.2.20", "db", "us-east-1", "us-east-1b"),
            ],
        )
        apply_observation(spark, own, read_snapshot_observation(spark, [snap]))

    observe("s0", "2026-01-01T00:00:00Z", "api")
    write_cidr_labels(
        cidr_labels_df(spark, [label_row("0.0.0.0/0", "internet", None, None, "internet")]),
        cfg.paths.resolve("cidr_labels"),
    )
    query, writer = start_stream(spark, cfg)
    try:
        # flow at minute 5 is newer than freshness (minute 0): pending, nothing published
        put(stream, [envelope([flow_line("192.0.2.10", "192.0.2.20", T0 + 300)])])
        wait_for(lambda: sum(m["flows_pending"] for m in writer.metrics) >= 1, "a pending flow")
        enriched = cfg.paths.resolve("enriched")
        assert spark.read.format("delta").load(enriched).count() == 0
        # the inventory moves on while the query runs: api still holds .10 at minute 6, web
        # holds it from minute 10, confirmed again at minute 15 (freshness). The pending api
        # flow (minute 5) is now confirmed; a web flow at minute 11 is final too.
        observe("s0b", "2026-01-01T00:06:00Z", "api")
        observe("s1", "2026-01-01T00:10:00Z", "web")
        observe("s2", "2026-01-01T00:15:00Z", "web")
        put(stream, [envelope([flow_line("192.0.2.10", "192.0.2.20", T0 + 660, eni="eni-web1")])])
        # metrics are appended when a batch has finished every write
        wait_for(lambda: sum(m["flows_final"] for m in writer.metrics) >= 2, "both flows final")
    finally:
        query.stop()
    rows = sorted(spark.read.format("delta").load(enriched).collect(), key=lambda r: r.start_time)
    assert [(r.src_app, r.src_attribution_status, r.dst_app) for r in rows] == [
        ("api", "attributed", "db"),  # resolved from pending with the owner at minute 5
        ("web", "attributed", "db"),  # uses the ownership written while the query ran
    ]
    assert spark.read.format("delta").load(cfg.paths.resolve("pending")).count() == 0
    # the api interval closed at minute 10 was last confirmed at minute 6: a flow at minute 8
    # would be in the unknown gap; the table says so
    api = spark.read.format("delta").load(own).where("app = 'api' AND ip = '192.0.2.10'").first()
    assert (api.valid_to.minute, api.last_seen.minute) == (10, 6)
