"""Record the classes a Dredge driver loads into a JVM class-data archive (AppCDS), at set-up.

    .venv/bin/python scripts/jvm_archive.py OUT.jsa

A local driver JVM spends much of its first seconds loading and verifying Spark's, Delta's and
Scala's classes; mapping them from an archive instead makes every cold start (a restarted
stream, a backfill, a test's driver) shorter. The archive is written when this script's driver
JVM exits after a tiny backfill that goes through what a batch loads (simulation files, an
ownership refresh, parse, attribution, the Delta writes). The local session factory uses it
when it exists (``spark_jobs.session``); a JVM or classpath it does not match is ignored by the
JVM. Kafka is off: the broker need not run at set-up.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from pyspark import SparkContext
from pyspark.sql import SparkSession

from spark_jobs import config
from spark_jobs.jobs.enrich_flows import run_backfill
from spark_jobs.session import ARCHIVE_AT_EXIT, CDS_QUIET, build_session
from spark_jobs.sim.runner import SimConfig, run
from spark_jobs.sinks.ownership import apply_observation, write_cidr_labels
from spark_jobs.sources.ownership import (
    cidr_labels_df,
    internet_labels,
    read_ip_ranges,
    read_snapshot_observation,
    read_vpc_cidrs,
)


def main(argv: list[str]) -> int:
    """Write the archive to ``argv[0]``; returns 0."""
    out = Path(argv[0]).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(prefix="dredge-jsa-") as tmp:
        work = Path(tmp)
        options = f"{ARCHIVE_AT_EXIT}{out} {CDS_QUIET}"
        cfg = config.load("conf/local.yaml", {
            "paths": {"root": str(work / "root")},
            "kafka": {"enabled": False},
            "spark": {"conf": {"spark.driver.extraJavaOptions": options}},
        })  # fmt: skip
        spark = build_session(cfg.spark)
        run(SimConfig(out=work / "sim", minutes=1, apps=8, flows_per_minute=500,
                      write_truth=False))  # fmt: skip
        own = cfg.paths.resolve("ownership")
        for snap in sorted((work / "sim" / "inventory").glob("snapshot-*.jsonl")):
            apply_observation(spark, own, read_snapshot_observation(spark, [str(snap)]))
        sim = work / "sim"
        labels = read_ip_ranges(str(sim / "ip-ranges.json")) + read_vpc_cidrs(
            str(sim / "vpcs.json")
        )
        write_cidr_labels(cidr_labels_df(spark, labels + internet_labels()),
                          cfg.paths.resolve("cidr_labels"))  # fmt: skip
        run_backfill(spark, cfg, str(sim / "flowlogs"), "text")
        _stop_jvm(spark)
    if not out.is_file():
        print(f"jvm_archive: the driver JVM wrote no {out}", file=sys.stderr)
        return 1
    return 0


def _stop_jvm(spark: SparkSession) -> None:
    """Stop Spark and wait for the driver JVM to exit: it writes the archive as it exits."""
    gateway = SparkContext._gateway
    spark.stop()
    if gateway is None:
        return
    proc = getattr(gateway, "proc", None)
    gateway.shutdown()
    if proc is not None:
        if proc.stdin is not None:
            proc.stdin.close()  # the JVM exits when its parent's pipe closes
        proc.wait(timeout=600)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
