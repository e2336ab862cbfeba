"""Benchmarks: `python -m bench.<name>` writes bench/results/<name>.json."""

from __future__ import annotations

import subprocess
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any


def git_commit() -> dict[str, Any]:
    """The measured code: ``commit`` (short hash of HEAD, None when git is unavailable) and
    ``code_dirty`` (files under spark_jobs/ or conf/ with uncommitted changes when the run
    started: the measured code may differ from the commit there)."""

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", *args], capture_output=True, text=True, timeout=10,
                                  cwd=Path(__file__).resolve().parents[1])  # fmt: skip
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout if done.returncode == 0 else None

    head = git("rev-parse", "--short", "HEAD")
    status = git("status", "--porcelain", "--", "spark_jobs", "conf")
    dirty = None if status is None else [line[3:] for line in status.splitlines() if line]
    return {"commit": head.strip() if head else None, "code_dirty": dirty}


def phase_seconds(metrics: Iterable[Mapping[str, Any]]) -> dict[str, float]:
    """Sum of each batch's ``phase_s`` (seconds per named phase) over ``metrics``."""
    total: dict[str, float] = {}
    for m in metrics:
        for name, seconds in dict(m.get("phase_s") or {}).items():
            total[name] = round(total.get(name, 0.0) + float(seconds), 3)
    return total
