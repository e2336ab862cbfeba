"""The README's figures table is what scripts/readme_figures.py builds from bench/results, and
the script refuses result files it cannot read instead of printing a partial table."""

from __future__ import annotations

import importlib
import importlib.util
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "readme_figures.py"
RESULTS = ROOT / "bench" / "results"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("readme_figures", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


rf = _load()


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=60
    )


@pytest.fixture
def results(tmp_path: Path) -> Path:
    """A copy of the committed results, to change one file at a time."""
    out = tmp_path / "results"
    shutil.copytree(RESULTS, out)
    return out


def _edit(folder: Path, stem: str, change: dict[str, Any]) -> None:
    path = folder / f"{stem}.json"
    data = json.loads(path.read_text())
    for key, value in change.items():
        node = data
        *parents, last = key.split(".")
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        node[last] = value
    path.write_text(json.dumps(data))


def _row(table: str, stem: str) -> list[str]:
    """The cells of the row of ``bench.<stem>``."""
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells[0] == f"`bench.{stem}`":
            return cells
    raise AssertionError(f"no row for bench.{stem} in\n{table}")


# ---- the README against the committed results ------------------------------------------


def test_readme_block_is_the_table_built_from_bench_results() -> None:
    readme = (ROOT / "README.md").read_text()
    expected = rf.build_table(RESULTS)
    assert rf.readme_block(readme) == expected, (
        "README.md's figures differ from bench/results: run "
        "`.venv/bin/python scripts/readme_figures.py --write`"
    )


def test_every_benchmark_has_a_row_and_every_row_a_result_file() -> None:
    benches = importlib.import_module("bench.__main__").BENCHES
    assert set(rf.ROWS) == set(benches)
    assert {p.stem for p in RESULTS.glob("*.json")} == set(benches)


def test_the_table_shows_the_committed_values_and_which_code_they_measured() -> None:
    table = rf.build_table(RESULTS)
    pipeline = json.loads((RESULTS / "pipeline.json").read_text())
    for stem in rf.ROWS:
        data = json.loads((RESULTS / f"{stem}.json").read_text())
        measured = _row(table, stem)[3]
        if not data.get("commit"):
            assert measured == "not recorded"
        elif data["commit"] == pipeline["commit"]:
            assert measured.startswith("as bench.pipeline")
        else:
            assert measured.startswith("other code")
    figures = _row(table, "pipeline")[2]
    assert f"ratio {pipeline['ratio_vs_plain']:g};" in figures
    rates = " / ".join(f"{r['flows_per_s']:,}" for r in pipeline["dredge_backfill"])
    assert figures.startswith(f"{rates} flows/s;")


def test_the_readme_carries_no_commit_hash() -> None:
    prose = (ROOT / "README.md").read_text()
    hashes = [
        w
        for w in re.findall(r"\b[0-9a-f]{7,40}\b", prose)
        if re.search(r"[a-f]", w) and re.search(r"[0-9]", w)
    ]
    assert hashes == []


# ---- values flow from the files into the table -----------------------------------------


def test_each_figure_comes_from_its_file(results: Path) -> None:
    _edit(results, "pipeline", {
        "dredge_backfill.0.flows_per_s": 1234, "dredge_backfill.1.flows_per_s": 5678,
        "dredge_backfill.2.flows_per_s": 91011, "ratio_vs_plain": 0.5,
        "sinks_alone.ratio_vs_plain": 0.75, "slowdown_smallest_to_largest_ownership": 1.25,
        "plain_split_to_parquet.flows_per_s": 250000, "commit": "abc1234", "code_dirty": [],
    })  # fmt: skip
    _edit(results, "latency", {
        "delta_latency_s.p50": 1.04, "delta_latency_s.p95": 2.96,
        "kafka_latency_s.p50": 1.5, "kafka_latency_s.p95": 3.25, "batch_duration_s.p50": 0.8,
    })  # fmt: skip
    _edit(results, "stream", {"code_dirty": ["spark_jobs/sinks/kafka.py"], "commit": "def5678"})
    table = rf.build_table(results)
    assert _row(table, "pipeline")[2:] == [
        "1,234 / 5,678 / 91,011 flows/s; plain split 250,000 flows/s, ratio 0.5; "
        "the two sinks alone ratio 0.75; ownership slowdown x1.25",
        "as bench.pipeline",
    ]
    assert _row(table, "latency")[2] == (
        "arrival -> Delta p50 / p95 1.0 / 3.0 s; -> Kafka 1.5 / 3.2 s; median batch 0.8 s"
    )
    assert _row(table, "stream")[3] == "other code + uncommitted changes"
    _edit(results, "stream", {"commit": "abc1234"})
    assert _row(rf.build_table(results), "stream")[3] == "as bench.pipeline + uncommitted changes"


def test_a_result_without_a_commit_says_so(results: Path) -> None:
    _edit(results, "parse", {"commit": None})
    assert _row(rf.build_table(results), "parse")[3] == "not recorded"


# ---- failures name the file -------------------------------------------------------------


def test_a_missing_result_file_fails_naming_it(results: Path) -> None:
    (results / "latency.json").unlink()
    done = _run("--results", str(results))
    assert done.returncode == 1
    assert done.stdout == ""
    assert "latency.json: missing" in done.stderr
    assert "python -m bench latency" in done.stderr


def test_an_invalid_result_file_fails_naming_it(results: Path) -> None:
    (results / "stream.json").write_text('{"shards": 4,')
    done = _run("--results", str(results))
    assert done.returncode == 1
    assert done.stdout == ""
    assert "stream.json: not valid JSON" in done.stderr


def test_a_result_that_is_not_an_object_fails(results: Path) -> None:
    (results / "kinesis.json").write_text("[1, 2]")
    with pytest.raises(rf.FiguresError, match=r"kinesis\.json: not a JSON object"):
        rf.build_table(results)


def test_a_missing_figure_fails_naming_the_key(results: Path) -> None:
    data = json.loads((results / "pipeline.json").read_text())
    del data["sinks_alone"]["ratio_vs_plain"]
    (results / "pipeline.json").write_text(json.dumps(data))
    with pytest.raises(rf.FiguresError, match=r"pipeline\.json: no `sinks_alone\.ratio_vs_plain`"):
        rf.build_table(results)


def test_a_figure_that_is_not_a_number_fails(results: Path) -> None:
    _edit(results, "latency", {"delta_latency_s.p95": "fast"})
    with pytest.raises(rf.FiguresError, match=r"`delta_latency_s\.p95` is 'fast', not a number"):
        rf.build_table(results)


def test_an_empty_run_list_fails(results: Path) -> None:
    _edit(results, "ownership", {"results": []})
    with pytest.raises(rf.FiguresError, match=r"ownership\.json: `results` is \[\]"):
        rf.build_table(results)


def test_a_result_file_without_a_row_fails(results: Path) -> None:
    (results / "new_bench.json").write_text('{"commit": "abc1234"}')
    with pytest.raises(rf.FiguresError, match=r"no row for new_bench\.json"):
        rf.build_table(results)


# ---- --write ----------------------------------------------------------------------------

README_TEXT = "# T\n\nbefore\n\n<!-- figures:start -->\nstale\n<!-- figures:end -->\n\nafter\n"


def test_write_replaces_only_the_block_and_is_idempotent(results: Path, tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(README_TEXT)
    done = _run("--write", "--results", str(results), "--readme", str(readme))
    assert done.returncode == 0, done.stderr
    assert "updated" in done.stdout
    text = readme.read_text()
    table = rf.build_table(results)
    assert text == README_TEXT.replace("stale\n", table)
    again = _run("--write", "--results", str(results), "--readme", str(readme))
    assert again.returncode == 0 and "already current" in again.stdout
    assert readme.read_text() == text


@pytest.mark.parametrize(
    "text",
    [
        "# no markers\n",
        "<!-- figures:end -->\n<!-- figures:start -->\n",
        "<!-- figures:start -->\n<!-- figures:end -->\n<!-- figures:start -->\n",
    ],
)
def test_write_needs_one_pair_of_markers(results: Path, tmp_path: Path, text: str) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(text)
    done = _run("--write", "--results", str(results), "--readme", str(readme))
    assert done.returncode == 1
    assert "needs one `<!-- figures:start -->` line" in done.stderr
    assert readme.read_text() == text


def test_write_leaves_the_readme_alone_when_a_result_is_bad(results: Path, tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(README_TEXT)
    (results / "parse.json").write_text("not json")
    done = _run("--write", "--results", str(results), "--readme", str(readme))
    assert done.returncode == 1
    assert "parse.json: not valid JSON" in done.stderr
    assert readme.read_text() == README_TEXT
