"""`dredge backfill` over files of CloudWatch envelopes produces the same enriched rows as the
streaming job over the same envelopes in Kinesis (provenance columns aside)."""

from __future__ import annotations

import json
import uuid

import pytest
from _flowkit import (
    T0,
    copy_dimensions,
    create_stream,
    envelope,
    flow_line,
    overrides,
    put,
    write_snapshot,
)

from spark_jobs import config
from spark_jobs.jobs.enrich_flows import run_backfill, run_stream
from spark_jobs.sinks.ownership import apply_observation, write_cidr_labels
from spark_jobs.sources.ownership import cidr_labels_df, label_row, read_snapshot_observation
from spark_jobs.transforms.output import ENRICHED_COLUMNS

pytestmark = pytest.mark.integration
PROVENANCE = {"flow_id", "origin", "origin_offset", "origin_sub", "arrival_time"}
BATCHES = [
    [flow_line("192.0.2.10", "192.0.2.20", T0 + 60 + i) for i in range(5)]
    + [flow_line("192.0.2.10", "198.51.100.9", T0 + 300), "2 1 eni-x bad line"],
    [flow_line("2001:db8::20", "192.0.2.10", T0 + 400, eni="eni-cache1"),
     flow_line("203.0.113.5", "192.0.2.20", T0 + 500, action="REJECT")],
]  # fmt: skip


def _prepare(
    spark, tmp_path, name: str, cfg_over: dict, like: config.DredgeConfig | None = None
) -> config.DredgeConfig:
    """The config with its ownership and CIDR-label tables; ``like``: copies of that config's
    tables (a job only reads them)."""
    cfg = config.load("conf/local.yaml", cfg_over)
    if like is not None:
        copy_dimensions(like.paths.resolve, cfg)
        return cfg
    snap = write_snapshot(tmp_path, f"{name}-s0", "2026-01-01T00:00:00Z",
                          [("192.0.2.10", "api", "us-east-1", "us-east-1a"),
                           ("192.0.2.20", "db", "eu-west-1", "eu-west-1a"),
                           ("2001:db8::20", "cache", "us-east-1", "us-east-1b")])  # fmt: skip
    later = write_snapshot(tmp_path, f"{name}-s1", "2026-01-01T01:00:00Z",
                           [("192.0.2.10", "api", "us-east-1", "us-east-1a"),
                            ("192.0.2.20", "db", "eu-west-1", "eu-west-1a"),
                            ("2001:db8::20", "cache", "us-east-1", "us-east-1b")])  # fmt: skip
    for s in (snap, later):
        apply_observation(
            spark, cfg.paths.resolve("ownership"), read_snapshot_observation(spark, [s])
        )
    write_cidr_labels(cidr_labels_df(spark, [
        label_row("198.51.100.0/24", "aws_service", "S3", "us-east-1", "AWS:S3"),
        label_row("0.0.0.0/0", "internet", None, None, "internet"),
    ]), cfg.paths.resolve("cidr_labels"))  # fmt: skip
    return cfg


def _rows(spark, cfg):
    cols = [c for c in ENRICHED_COLUMNS if c not in PROVENANCE]
    df = spark.read.format("delta").load(cfg.paths.resolve("enriched")).select(*cols)
    return sorted((tuple(r) for r in df.collect()), key=repr)


def test_backfill_of_envelope_files_equals_the_stream(spark, tmp_path):
    run = uuid.uuid4().hex[:8]
    stream = create_stream(1)
    put(stream, [envelope(lines) for lines in BATCHES])
    over = overrides(tmp_path / "stream", stream, run, "available_now")
    over["kafka"] = {"enabled": False}
    streamed = _prepare(spark, tmp_path, "a", over)
    run_stream(spark, streamed)

    folder = tmp_path / "envelopes"
    folder.mkdir()
    with (folder / "part-0.json").open("w") as fh:
        for lines in BATCHES:
            body = {"messageType": "DATA_MESSAGE", "owner": "111122223333",
                    "logGroup": "vpc-flow-logs", "logStream": "eni-api1-all",
                    "subscriptionFilters": ["dredge"],
                    "logEvents": [{"id": str(i), "timestamp": T0 * 1000, "message": m}
                                  for i, m in enumerate(lines)]}  # fmt: skip
            fh.write(json.dumps(body) + "\n")
    over_b = overrides(tmp_path / "backfill", stream, run, "available_now")
    over_b["kafka"] = {"enabled": False}
    # the backfill takes the large-ownership path (semi-join + shuffle join), the stream the
    # broadcast one: both must give the same rows
    over_b["attribution"] = {"broadcast_threshold_rows": 0}
    backfilled = _prepare(spark, tmp_path, "b", over_b, like=streamed)
    run_backfill(spark, backfilled, str(folder), "cloudwatch")

    stream_rows, backfill_rows = _rows(spark, streamed), _rows(spark, backfilled)
    assert len(stream_rows) == 8  # 8 valid flows; the bad line is quarantined in both
    assert backfill_rows == stream_rows
    for cfg in (streamed, backfilled):
        bad = spark.read.format("delta").load(cfg.paths.resolve("quarantine")).collect()
        assert [q.reason for q in bad] == ["field_count"]
