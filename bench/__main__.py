"""``python -m bench`` (``make bench``): every benchmark in turn, each in its own process so
one's session settings or JVM state cannot colour another's. Figures go to bench/results/."""

from __future__ import annotations

import subprocess
import sys
import time

BENCHES = (
    "parse",
    "kinesis",
    "stream",
    "latency",
    "latency_floor",
    "ownership",
    "pipeline",
    "parts",
    "settings",
    "dq_sample",
)


def main() -> int:
    """Run them all; returns the number that failed."""
    failed = 0
    for name in sys.argv[1:] or BENCHES:
        started = time.monotonic()
        code = subprocess.call([sys.executable, "-m", f"bench.{name}"])
        print(f"bench: {name} exit {code} in {time.monotonic() - started:.0f}s", flush=True)
        failed += code != 0
    return failed


if __name__ == "__main__":
    raise SystemExit(main())
