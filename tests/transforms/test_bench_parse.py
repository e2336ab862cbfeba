"""The parse benchmark runs end to end on a tiny input and reports every figure."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from bench import parse as bench_parse


def test_bench_parse_tiny(
    spark: SparkSession, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "parse.json"
    assert bench_parse.main(["--lines", "120", "--events-per-record", "25", "--repeat", "1",
                             "--output", str(out)]) == 0  # fmt: skip
    report = json.loads(out.read_text())
    assert report["lines"] == 120 and report["records"] == 5
    assert report["all_lines_valid"] is True and report["valid_flows"] == 120
    for name in ("read_text_split", "parse", "decode_parse"):
        assert report["results"][name]["lines_per_s"] > 0
    assert "decode+parse" in capsys.readouterr().out


def test_generated_lines_are_v2_with_ipv6_and_nodata() -> None:
    lines = bench_parse.make_lines(100)
    assert all(len(line.split()) == 14 for line in lines)
    assert sum(line.endswith("NODATA") for line in lines) == 2
    assert sum("2001:db8" in line for line in lines) == 8
