"""In-stream data quality is wired into the batch writer: off by default, and when on it
validates the batch's final rows with the enriched suite and reports (never raises)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from spark_jobs import config, console
from spark_jobs.config import ConfigError
from spark_jobs.jobs.enrich_flows import targets_for
from spark_jobs.quality import runner
from spark_jobs.sinks.flow_batch import FlowBatchWriter


def _writer(fraction: float) -> FlowBatchWriter:
    cfg = config.from_dict({"quality": {"sample_fraction": fraction, "min_attributed_share": 0.7},
                            "kafka": {"enabled": False}})  # fmt: skip
    return FlowBatchWriter(stage=lambda df, cache: None, targets=targets_for(cfg, "q"))  # type: ignore[arg-type,return-value]


def test_off_by_default_never_calls_gx(monkeypatch):
    monkeypatch.setattr(runner, "validate_sample", lambda *a, **k: pytest.fail("called"))
    assert _writer(0.0)._quality(object()) is None  # type: ignore[arg-type]


def test_sampled_validation_uses_the_enriched_suite(monkeypatch):
    seen: dict[str, Any] = {}

    def fake(df: Any, suite: str, fraction: float, **kw: Any) -> dict[str, Any]:
        seen.update(df=df, suite=suite, fraction=fraction, **kw)
        return {"suite": "dredge_enriched", "success": False, "failed": ["srcport_range"]}

    monkeypatch.setattr(runner, "validate_sample", fake)
    batch = object()
    out = _writer(0.25)._quality(batch)  # type: ignore[arg-type]
    assert out == {"suite": "dredge_enriched", "success": False, "failed": ["srcport_range"]}
    assert seen == {"df": batch, "suite": "enriched", "fraction": 0.25, "min_attributed_share": 0.7}


@pytest.mark.parametrize("key", ["sample_fraction", "min_attributed_share"])
def test_fractions_outside_zero_one_fail_at_load(key):
    with pytest.raises(ConfigError, match=f"quality.{key}"):
        config.from_dict({"quality": {key: 1.5}})


def test_the_report_lands_in_the_batch_metrics(tmp_path, monkeypatch):
    monkeypatch.setenv(console.METRICS_ENV, str(tmp_path / "metrics.jsonl"))
    writer = _writer(0.25)
    report = {"suite": "dredge_enriched", "success": False, "failed": ["srcport_range"]}
    counts = {"records_in": 4, "flows_final": 4, "both_attributed": 2}
    writer._report(3, 0.0, counts, report, {})
    line = (tmp_path / "metrics.jsonl").read_text().splitlines()[-1]
    metrics = json.loads(line)["dredge_batch"]
    assert metrics["quality"] == report
    assert metrics["pct_both_attributed"] == 50.0
    assert writer.metrics[-1]["quality"] == report
