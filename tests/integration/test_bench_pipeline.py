"""The pipeline benchmark runs end to end on a tiny input and writes its figures."""

from __future__ import annotations

import json

import pytest

from bench import parts, pipeline, settings

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
    assert 0 < alone["kafka_published"] <= alone["rows"]  # per-minute messages of the rows
    assert 1 <= result["warm_up"]["files"] < result["warm_up"]["of_files"]
    assert "bench.pipeline:" in capsys.readouterr().out


def test_parts_bench_tiny(tmp_path):
    out = tmp_path / "parts.json"
    # the session is warm from earlier tests; the warm-up is the measured backfill's own call
    assert parts.main(["--minutes", "1", "--flows-per-minute", "300", "--apps", "4",
                       "--no-warm-up", "--out", str(out)]) == 0  # fmt: skip
    result = json.loads(out.read_text())
    assert set(result["seconds"]) == {
        "plain_split_to_parquet", "read_parse_noop", "fill_parsed_cache",
        "attribution_noop_from_cached_parse", "fill_enriched_cache",
        "delta_write_from_cache", "kafka_publish_from_written_files", "dredge_backfill",
    }  # fmt: skip
    assert set(result["flows_per_s"]) == set(result["seconds"])  # every part was measured
    assert result["lines"] > 200
    # per-minute messages: fewer than the flows they carry, each flow of a line at most once
    assert 0 < result["kafka_messages"] <= result["flows_in_kafka_messages"] <= result["lines"]
    assert result["backfill_phase_s"]["delta"] > 0


def test_settings_bench_tiny(tmp_path, spark):
    # one setting: each compared setting runs the same loop (a backfill per value)
    key = "spark.sql.adaptive.enabled"
    before = spark.conf.get(key)
    out = tmp_path / "settings.json"
    assert settings.main(["--minutes", "1", "--flows-per-minute", "300", "--rounds", "1",
                          "--only", key, "--no-warm-up", "--out", str(out)]) == 0  # fmt: skip
    assert spark.conf.get(key) == before  # the shared session gets its setting back
    result = json.loads(out.read_text())
    assert set(result["seconds"]) == {key}
    ours, default = settings.SETTINGS[key]
    assert {v: len(s) for v, s in result["seconds"][key].items()} == {ours: 1, default: 1}
    assert result["median_s"][key] == {v: s[0] for v, s in result["seconds"][key].items()}
