"""`dredge demo` end to end, then Great Expectations on its tables (what CI gates on)."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
from _demo import ROOT, DemoOutput

pytestmark = pytest.mark.e2e


def test_demo_attributes_without_misattribution(demo_output: DemoOutput) -> None:
    out = demo_output.stdout
    dredge = re.search(
        r"demo: dredge: correct (\d+) .*misattributed (\d+) .*unattributed (\d+)", out
    )
    naive = re.search(r"demo: naive_current_owner: correct (\d+) .*misattributed (\d+)", out)
    assert dredge and naive, out[-2000:]
    correct, mis, _ = (int(g) for g in dredge.groups())
    assert mis == 0
    assert correct > 0
    assert int(naive.group(2)) > 0  # the baseline does misattribute reused addresses
    batches = [json.loads(line.split("demo: batch ", 1)[1]) for line in out.splitlines()
               if line.startswith("demo: batch ")]  # fmt: skip
    assert batches[0]["flows_pending"] > 0  # ownership lagged the flows...
    assert sum(b["flows_pending"] for b in batches[-1:]) == 0  # ...and caught up
    assert sum(b["quarantined"] for b in batches) > 0  # the simulator's malformed lines
    html = (demo_output.report / "index.html").read_text()
    assert "accuracy.png" in html and (demo_output.report / "accuracy.png").stat().st_size > 5000


@pytest.mark.parametrize("table", ["enriched", "ownership", "quarantine"])
def test_data_quality_suites_pass_on_the_demo_output(demo_output: DemoOutput, table, tmp_path):
    result = tmp_path / f"{table}.json"
    cmd = [sys.executable, "-m", "spark_jobs.cli", "dq", "--table", table,
           "--path", str(demo_output.table(table)), "--result-json", str(result)]  # fmt: skip
    if table == "enriched":
        cmd += ["--ground-truth", str(demo_output.root / "sim" / "truth" / "flows")]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-3000:]
    assert json.loads(result.read_text())["success"] is True
    assert "FAIL" not in done.stdout
