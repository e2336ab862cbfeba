"""Every notebook executes against the demo's enriched Delta table and draws a plot."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import nbformat
import pytest
from _demo import DemoOutput

ROOT = Path(__file__).resolve().parents[2]


def _runner():  # scripts/ is not a package
    spec = importlib.util.spec_from_file_location(
        "run_notebooks", ROOT / "scripts" / "run_notebooks.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["run_notebooks"] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.e2e
def test_notebooks_execute_and_plot_on_the_demo_output(
    demo_output: DemoOutput, tmp_path: Path, monkeypatch
) -> None:
    table = demo_output.table("enriched")
    monkeypatch.setenv("DREDGE_ENRICHED", str(table))  # read by each parameters cell
    monkeypatch.setenv("DREDGE_SPARK_MASTER", "local[1]")
    runner = _runner()
    names = [p.stem for p in runner.notebook_paths(ROOT / "notebooks")]
    assert len(names) >= 4, names
    out = tmp_path / "executed"
    assert runner.main(["--out", str(out), "--timeout", "600"]) == 0
    for name in names:
        nb = nbformat.read(out / f"{name}.ipynb", as_version=4)
        outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
        assert not [o for o in outputs if o.get("output_type") == "error"], name
        images = [o for o in outputs if "image/png" in o.get("data", {})]
        assert images, f"{name} drew no plot"
        tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
        assert len(tagged) == 1, f"{name} needs one cell tagged 'parameters'"


@pytest.mark.e2e
def test_notebooks_share_a_kernel_but_not_a_namespace(tmp_path: Path) -> None:
    # the runner executes every notebook in one kernel: a name the first one defined must not
    # reach the second, or a notebook could pass only because another ran before it
    folder = tmp_path / "nbs"
    folder.mkdir()
    (folder / "a_defines.py").write_text("# %%\nimport os\nLEAK = os.getpid()\nprint(LEAK)\n")
    (folder / "b_reads.py").write_text("# %%\nimport os\nprint(os.getpid())\nprint(LEAK)\n")
    runner = _runner()
    out = tmp_path / "executed"
    assert runner.main(["--notebooks", str(folder), "--out", str(out), "--timeout", "60"]) == 1
    first = nbformat.read(out / "a_defines.ipynb", as_version=4)
    second = nbformat.read(out / "b_reads.ipynb", as_version=4)
    pid = first.cells[0].outputs[0]["text"].strip()
    shown = second.cells[0].outputs
    assert shown[0]["text"].splitlines()[0] == pid  # the same kernel process
    assert shown[-1]["output_type"] == "error" and shown[-1]["ename"] == "NameError"
