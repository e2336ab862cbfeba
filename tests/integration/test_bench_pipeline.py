"""The pipeline benchmark runs end to end on a tiny input and writes its figures."""

from __future__ import annotations

import json

import pytest

from bench import pipeline

pytestmark = pytest.mark.integration


def test_pipeline_bench_tiny(tmp_path, capsys):
    out = tmp_path / "pipeline.json"
    code = pipeline.main(["--minutes", "1", "--flows-per-minute", "300", "--apps", "4",
                          "--sizes", "500,1000", "--out", str(out)])  # fmt: skip
    assert code == 0
    result = json.loads(out.read_text())
    assert result["lines"] > 200
    assert [r["ownership_intervals"] for r in result["dredge_backfill"]] == [500, 1000]
    assert all(r["flows_per_s"] > 0 for r in result["dredge_backfill"])
    assert result["plain_split_to_parquet"]["flows_per_s"] > 0
    alone = result["sinks_alone"]  # the first run's enriched rows, through both sinks again
    assert alone["rows"] > 0 and alone["flows_per_s"] > 0
    assert 0 < alone["kafka_published"] <= alone["rows"]  # traffic rows only (no NODATA)
    assert 1 <= result["warm_up"]["files"] < result["warm_up"]["of_files"]
    assert "bench.pipeline:" in capsys.readouterr().out
