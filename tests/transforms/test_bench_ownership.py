"""The ownership benchmark runs end to end on a tiny size and reports exact change counts."""

from __future__ import annotations

import json
from pathlib import Path

from pyspark.sql import SparkSession

from bench import ownership


def test_bench_tiny(spark: SparkSession, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "ownership.json"
    assert ownership.main(["--sizes", "200", "--out", str(out), "--master", "local[2]"]) == 0
    (result,) = json.loads(out.read_text())["results"]
    # 10 of 200 IPs changed owner (id % 20 == 0), 2 vanished (id % 100 == 1), 2 are new
    assert (result["ips"], result["closed"], result["opened"]) == (200, 12, 12)
    assert result["rerun_skipped"] == 1
    assert result["refresh_s"] > 0
    assert capsys.readouterr().out.startswith("ownership refresh: 200 IPs load ")
