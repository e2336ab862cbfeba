"""What the session's demo run left behind (shared by the e2e tests; not a test module)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class DemoOutput:
    root: Path
    report: Path
    stdout: str
    metrics: Path  # the batches' metrics, JSON lines (--metrics-json)

    def table(self, name: str) -> Path:
        return self.root / name
