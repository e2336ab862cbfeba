"""Execute the jupytext notebooks in ``notebooks/`` against an enriched table.

    .venv/bin/python scripts/run_notebooks.py [--enriched data/enriched] [--out reports/notebooks]
        [--only NAME ...] [--timeout 900]

Each ``notebooks/*.py`` (percent format) is converted with jupytext and executed with
nbclient on the ``python3`` kernel of this interpreter's environment, from the project folder;
the executed ``.ipynb`` (outputs included, also when a cell fails) goes to ``--out``. The
notebooks run one after another in one kernel, whose namespace is emptied between them: each
starts from nothing it did not import or define itself, and the Spark session (a JVM) is
started once. The table comes through ``DREDGE_ENRICHED`` (the notebooks' parameters cell
reads it). Exits 1 if any notebook fails.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import jupytext
import nbformat
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

ROOT = Path(__file__).resolve().parent.parent


def notebook_paths(folder: Path, only: Sequence[str] = ()) -> list[Path]:
    """The percent-format notebooks in ``folder`` (optionally only the named stems)."""
    paths = sorted(p for p in folder.glob("*.py") if not p.name.startswith("_"))
    return [p for p in paths if not only or p.stem in only]


# Empties the kernel's namespace between notebooks (imported modules stay loaded).
RESET = "get_ipython().run_line_magic('reset', '-f')"


def run_one(path: Path, out_dir: Path, timeout: int, km: KernelManager) -> tuple[bool, str]:
    """Execute one notebook on ``km``'s kernel, then empty its namespace; returns (ok,
    message) and always writes the executed notebook."""
    nb = jupytext.read(path)
    client = NotebookClient(nb, km=km, timeout=timeout, kernel_name="python3")
    ok, message = True, "ok"
    try:
        client.execute()
    except CellExecutionError as err:
        ok, message = False, str(err).strip().splitlines()[-1]
    finally:
        _reset(km, timeout)
    out_dir.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, out_dir / f"{path.stem}.ipynb")
    return ok, message


def _reset(km: KernelManager, timeout: int) -> None:
    kc = km.client()
    kc.start_channels()
    try:
        reply = kc.execute_interactive(RESET, timeout=timeout)
        if reply["content"]["status"] != "ok":
            raise RuntimeError(f"could not reset the kernel's namespace: {reply['content']}")
    finally:
        kc.stop_channels()


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; see the module docstring."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--enriched", help="enriched Delta table (default: $DREDGE_ENRICHED or data/enriched)"
    )
    p.add_argument("--notebooks", type=Path, default=ROOT / "notebooks")
    p.add_argument("--out", type=Path, default=ROOT / "reports" / "notebooks")
    p.add_argument("--only", nargs="*", default=[], help="notebook names (file stems)")
    p.add_argument("--timeout", type=int, default=900, help="seconds per cell")
    args = p.parse_args(argv)
    if args.enriched:
        os.environ["DREDGE_ENRICHED"] = str(Path(args.enriched).resolve())
    paths = notebook_paths(args.notebooks, args.only)
    if not paths:
        print(f"no notebooks in {args.notebooks}", file=sys.stderr)
        return 1
    failures = 0
    km = KernelManager(kernel_name="python3")
    km.start_kernel(cwd=str(ROOT))
    try:
        for path in paths:
            started = time.monotonic()
            ok, message = run_one(path, args.out, args.timeout, km)
            failures += not ok
            verdict = "OK  " if ok else "FAIL"
            print(f"{verdict} {path.name} ({time.monotonic() - started:.0f}s): {message}")
    finally:
        km.shutdown_kernel(now=True)
    print(f"executed notebooks in {args.out}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
