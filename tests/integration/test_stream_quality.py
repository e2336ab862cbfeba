"""In-stream validation for real: a backfill with ``quality.sample_fraction=1.0`` validates
every final row of its batch with the enriched suite (Great Expectations, not a mock) and puts
the verdict in the batch metrics; a failed check is reported while the batch still commits."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from _flowkit import T0, copy_dimensions, flow_line, write_snapshot
from pyspark.sql import SparkSession

from spark_jobs import config
from spark_jobs.jobs.enrich_flows import run_backfill
from spark_jobs.sinks.ownership import apply_observation, write_cidr_labels
from spark_jobs.sources.ownership import cidr_labels_df, label_row, read_snapshot_observation

pytestmark = pytest.mark.integration
OWNED = [("192.0.2.10", "api", "us-east-1", "us-east-1a"),
         ("192.0.2.20", "db", "eu-west-1", "eu-west-1a")]  # fmt: skip
# both sides owned: the batch's attributed-side share is 1.0
OWNED_LINES = [flow_line("192.0.2.10", "192.0.2.20", T0 + 60 + i) for i in range(3)]
# 203.0.113.5 is owned by nobody: one unattributed side, the share drops to 7/8
UNOWNED_LINE = flow_line("203.0.113.5", "192.0.2.20", T0 + 300, action="REJECT")


@pytest.fixture(scope="module")
def dimensions(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Ownership known up to T0+1h and an internet label, built once for the module: each
    test's backfill gets a copy (a job only reads them)."""
    root = tmp_path_factory.mktemp("dimensions")
    for i, at in enumerate(("2026-01-01T00:00:00Z", "2026-01-01T01:00:00Z")):
        snap = write_snapshot(root, f"s{i}", at, OWNED)
        apply_observation(spark, str(root / "ownership"), read_snapshot_observation(spark, [snap]))
    labels = [label_row("0.0.0.0/0", "internet", None, None, "internet")]
    write_cidr_labels(cidr_labels_df(spark, labels), str(root / "cidr_labels"))
    return root


def _backfill(
    spark: SparkSession, tmp_path: Path, dimensions: Path, lines: list[str],
    quality: dict[str, float],
) -> tuple[list[dict[str, Any]], int]:  # fmt: skip
    """One envelope file of ``lines`` backfilled with the given ``quality`` config; the
    writer's batch metrics and the enriched Delta row count."""
    cfg = config.load("conf/local.yaml", {
        "paths": {"root": str(tmp_path / "data")},
        "kafka": {"enabled": False},
        "stream": {"query_name": "it-quality"},
        "spark": {"shuffle_partitions": 2},
        "quality": quality,
    })  # fmt: skip
    copy_dimensions(lambda table: str(dimensions / table), cfg)
    folder = tmp_path / "envelopes"
    folder.mkdir()
    body = {"messageType": "DATA_MESSAGE", "owner": "111122223333",
            "logGroup": "vpc-flow-logs", "logStream": "eni-api1-all",
            "subscriptionFilters": ["dredge"],
            "logEvents": [{"id": str(i), "timestamp": T0 * 1000, "message": m}
                          for i, m in enumerate(lines)]}  # fmt: skip
    (folder / "part-0.json").write_text(json.dumps(body) + "\n")
    writer = run_backfill(spark, cfg, str(folder), "cloudwatch")
    rows = spark.read.format("delta").load(cfg.paths.resolve("enriched")).count()
    return writer.metrics, rows


def _one_batch(metrics: list[dict[str, Any]], rows: int) -> dict[str, Any]:
    with_rows = [m for m in metrics if m["flows_final"]]
    assert len(with_rows) == 1, metrics
    batch = with_rows[0]
    assert batch["flows_final"] == rows
    return batch


def test_sampled_validation_checks_every_final_row_and_passes(spark, tmp_path, dimensions):
    metrics, rows = _backfill(spark, tmp_path, dimensions, OWNED_LINES, {"sample_fraction": 1.0})
    batch = _one_batch(metrics, rows)
    assert rows == len(OWNED_LINES)
    quality = batch["quality"]
    assert quality["suite"] == "dredge_enriched"
    assert quality["fraction"] == 1.0
    assert quality["success"] is True, quality
    assert quality["failed"] == []
    assert quality["rows"] == batch["flows_final"]
    assert "error" not in quality


def test_an_impossible_attributed_share_fails_the_check_not_the_batch(spark, tmp_path, dimensions):
    lines = [*OWNED_LINES, UNOWNED_LINE]
    quality_cfg = {"sample_fraction": 1.0, "min_attributed_share": 1.0}
    metrics, rows = _backfill(spark, tmp_path, dimensions, lines, quality_cfg)
    batch = _one_batch(metrics, rows)
    assert rows == len(lines)  # committed to Delta despite the failed check
    assert batch["both_attributed"] == len(OWNED_LINES)
    quality = batch["quality"]
    assert quality["success"] is False, quality
    assert quality["failed"] == ["attributed_share"]
    assert "0.875" in quality["observed"]["attributed_share"]
    assert quality["rows"] == rows
