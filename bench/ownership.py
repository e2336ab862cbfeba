"""Benchmark: ownership refresh (SCD2 plan + Delta MERGE) for 100k and 1M IPs.

    python -m bench.ownership [--sizes 100000,1000000] [--out bench/results/ownership.json]

Per size N: an initial load of N IPs into an empty table, then the measured steady-state
refresh - an observation where 5 % of IPs changed owner, 1 % disappeared and N/100 are new -
and a re-run of that observation (a no-op). Writes the figures as JSON and prints one line.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from bench import git_commit
from spark_jobs.config import SparkConfig
from spark_jobs.session import build_session
from spark_jobs.sinks.ownership import apply_observation
from spark_jobs.transforms.ownership import Observation

ACCOUNT, REGION = "123456789012", "us-east-1"
T0 = datetime(2024, 5, 1, tzinfo=UTC)
T1 = datetime(2024, 5, 1, 0, 5, tzinfo=UTC)


def _rows(spark: SparkSession, n: int, moved: bool) -> DataFrame:
    """IPs 10.a.b.c numbered 0..n-1 (+ n/100 new ones and 1 % gone when ``moved``)."""
    ids = spark.range(0, n + (n // 100 if moved else 0))
    if moved:
        ids = ids.filter((F.col("id") >= n) | (F.col("id") % 100 != 1))
    octet = [F.shiftright(F.col("id"), s).bitwiseAND(255) for s in (16, 8, 0)]
    app = F.concat(F.lit("app-"), (F.col("id") % 1000).cast("string"))
    if moved:
        app = F.when(F.col("id") % 20 == 0, F.concat(app, F.lit("-new"))).otherwise(app)
    return ids.select(
        F.concat_ws(".", F.lit("10"), *[o.cast("string") for o in octet]).alias("ip"),
        app.alias("app"),
        F.concat(app, F.lit("-prod")).alias("cluster"),
        F.lit(ACCOUNT).alias("account_id"),
        F.lit(REGION).alias("region"),
        F.lit("us-east-1a").alias("az"),
        F.lit("vpc-1").alias("vpc_id"),
        F.lit("subnet-1").alias("subnet_id"),
        F.concat(F.lit("i-"), F.hex(F.col("id"))).alias("resource_id"),
        F.lit("instance").alias("kind"),
        F.concat(F.lit("eni-"), F.hex(F.col("id"))).alias("eni_id"),
        F.lit("2024-01-01T00:00:00Z").alias("eni_attached_at"),
        F.lit("bench").alias("source"),
    )


def run_size(spark: SparkSession, n: int, work_dir: str) -> dict[str, float | int]:
    """Load, refresh and re-run one size; returns its figures."""
    path = os.path.join(work_dir, f"ownership_{n}")
    scopes = ((ACCOUNT, REGION),)
    started = time.perf_counter()
    apply_observation(spark, path, Observation(T0, _rows(spark, n, False), scopes, label="t0"))
    loaded = time.perf_counter()
    result = apply_observation(
        spark, path, Observation(T1, _rows(spark, n, True), scopes, label="t1")
    )
    refreshed = time.perf_counter()
    again = apply_observation(
        spark, path, Observation(T1, _rows(spark, n, True), scopes, label="t1")
    )
    rerun = time.perf_counter()
    return {
        "ips": n,
        "initial_load_s": round(loaded - started, 3),
        "refresh_s": round(refreshed - loaded, 3),
        "rerun_noop_s": round(rerun - refreshed, 3),
        "closed": result.closed,
        "opened": result.opened,
        "rerun_skipped": int(again.skipped),
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; returns 0."""
    p = argparse.ArgumentParser(prog="python -m bench.ownership")
    p.add_argument("--sizes", default="100000,1000000")
    p.add_argument("--out", default="bench/results/ownership.json")
    p.add_argument("--master", default="local[*]")
    args = p.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    measured = git_commit()  # before the run: what was dirty when it started
    spark = build_session(SparkConfig(master=args.master, app_name="bench-ownership",
                                      shuffle_partitions=8))  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="dredge-bench-ownership-") as work_dir:
        results = [run_size(spark, n, work_dir) for n in sizes]
    report = {
        "benchmark": "ownership_refresh",
        "scenario": "refresh = 5% owner changes, 1% gone, 1% new; MERGE into N open intervals",
        **measured,
        "host": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "spark": spark.version,
            "master": args.master,
        },
        "results": results,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(
        "ownership refresh: "
        + "; ".join(
            f"{r['ips']:,} IPs load {r['initial_load_s']}s refresh {r['refresh_s']}s "
            f"({r['closed']} closed, {r['opened']} opened) rerun {r['rerun_noop_s']}s"
            for r in results
        )
        + f" -> {args.out}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
