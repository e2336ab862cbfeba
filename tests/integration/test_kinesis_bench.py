"""The Kinesis bench runs end to end on a tiny stream and writes its figures."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bench import kinesis as bench

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


def test_bench_runs_tiny(spark: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "kinesis.json"
    result = bench.main(["--records", "120", "--shards", "2", "--out", str(out)])
    assert json.loads(out.read_text()) == result
    for design in ("boto3", "dredge_kinesis", "naive_driver_scan"):
        assert result[design]["rows"] == 120, design
        assert result[design]["rows_per_s"] > 0
    assert "rows/s" in capsys.readouterr().out
