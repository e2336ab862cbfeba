"""The ownership benchmark runs end to end on a tiny size and reports exact change counts."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from pyspark.sql import SparkSession

from bench import ownership


def test_bench_tiny(spark: SparkSession, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "ownership.json"
    assert ownership.main(["--sizes", "200", "--out", str(out), "--master", "local[2]"]) == 0
    report = json.loads(out.read_text())
    # the measured code is named: a commit of this repository's history (others may commit
    # while the test runs, so HEAD itself can have moved on)
    commit = report["commit"]
    assert isinstance(commit, str) and len(commit) >= 7
    ancestor = ["git", "merge-base", "--is-ancestor", commit, "HEAD"]
    assert subprocess.run(ancestor, cwd=Path(__file__).parents[2]).returncode == 0
    assert isinstance(report["code_dirty"], list)
    (result,) = report["results"]
    # 10 of 200 IPs changed owner (id % 20 == 0), 2 vanished (id % 100 == 1), 2 are new
    assert (result["ips"], result["closed"], result["opened"]) == (200, 12, 12)
    assert result["rerun_skipped"] == 1
    assert result["refresh_s"] > 0
    assert capsys.readouterr().out.startswith("ownership refresh: 200 IPs load ")
