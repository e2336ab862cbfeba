"""The demo, run once per session: its output feeds the data-quality and notebook checks."""

from __future__ import annotations

import subprocess
import sys

import pytest
from _demo import ROOT, DemoOutput


@pytest.fixture(scope="session")
def demo_output(tmp_path_factory: pytest.TempPathFactory) -> DemoOutput:
    base = tmp_path_factory.mktemp("demo")
    root, report, metrics = base / "data", base / "report", base / "metrics.jsonl"
    cmd = [sys.executable, "-m", "spark_jobs.cli", "demo", "--root", str(root), "--report",
           str(report), "--minutes", "3", "--apps", "12", "--flows-per-minute", "1500",
           "--metrics-json", str(metrics)]  # fmt: skip
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=1500)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    return DemoOutput(root, report, done.stdout, metrics)
