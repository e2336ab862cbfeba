"""Does a session setting still pay on the batch path? One session, the same backfill input,
each setting's values alternated over several rounds (so a busy machine colours both alike):
seconds per backfill for each value.

Only settings a running session can change are compared here (SQL settings); start-up
settings (JVM options, the compiled-code cache) are compared by running the whole command
twice with ``farm-bench --vs``.

Run: ``python -m bench.settings [--minutes M --rounds R] [--only SETTING ...]``; writes
bench/results/settings.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench import git_commit
from bench.pipeline import OwnershipRoots, _backfill, add_no_warm_up, simulated_files
from spark_jobs import config
from spark_jobs.session import build_session

RESULTS = Path(__file__).resolve().parent / "results" / "settings.json"
# setting -> (the value the session runs with, the value it is compared against: Spark's
# default, or for a setting Dredge leaves at Spark's default, the other choice)
SETTINGS = {
    "spark.sql.inMemoryColumnarStorage.compressed": ("false", "true"),
    "spark.sql.adaptive.enabled": ("true", "false"),
    "spark.sql.maxConcurrentOutputFileWriters": ("4", "0"),
    # Spark's default is the default parallelism: one partition per core
    "spark.sql.files.minPartitionNum": (str(4 * (os.cpu_count() or 1)), str(os.cpu_count() or 1)),
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the comparison; returns 0."""
    p = argparse.ArgumentParser(prog="python -m bench.settings")
    p.add_argument("--minutes", type=int, default=5)
    p.add_argument("--flows-per-minute", type=int, default=60_000)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--out", default=str(RESULTS))
    add_no_warm_up(p)
    p.add_argument("--only", nargs="+", choices=sorted(SETTINGS), help="compare only these")
    args = p.parse_args(argv)
    compared = {k: v for k, v in SETTINGS.items() if not args.only or k in args.only}
    measured = git_commit()
    work = Path(tempfile.mkdtemp(prefix="dredge-settings-"))
    try:
        sim = work / "sim"
        files = simulated_files(sim, args.minutes, 40, args.flows_per_minute)
        spark = build_session(config.load("conf/local.yaml").spark)
        roots = OwnershipRoots(spark, sim, work)
        base: dict[str, Any] = {"kafka": {"enabled": True, "topic": f"bench.{work.name}"},
                                "stream": {"query_name": "bench-settings"}}  # fmt: skip
        if not args.no_warm_up:
            _backfill(spark, base, roots.root(work / "warm", 10_000), files)
        seconds: dict[str, dict[str, list[float]]] = {k: {} for k in compared}
        before = {key: spark.conf.get(key, None) for key in compared}
        n = 0
        try:
            for _ in range(args.rounds):
                for key, values in compared.items():
                    for value in values:
                        spark.conf.set(key, value)
                        n += 1
                        root = roots.root(work / f"r{n}", 10_000)
                        base["kafka"]["topic"] = f"bench.{work.name}.{n}"
                        took = _backfill(spark, base, root, files)["seconds"]
                        seconds[key].setdefault(value, []).append(round(took, 2))
                    spark.conf.set(key, str(before[key] or values[0]))
        finally:  # a shared session (tests) gets its own settings back
            for key, old in before.items():
                if old is None:
                    spark.conf.unset(key)
                else:
                    spark.conf.set(key, old)
        medians = {k: {v: statistics.median(s) for v, s in d.items()} for k, d in seconds.items()}
        result = {
            "minutes": args.minutes,
            "seconds": seconds,
            "median_s": medians,
            "cores": os.cpu_count(),
            "load_avg_1m": round(os.getloadavg()[0], 2),
            **measured,
        }
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
        for key, by_value in result["median_s"].items():
            print(f"bench.settings: {key}: " + ", ".join(f"{v} {s} s" for v, s in by_value.items()))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
