"""Backfill throughput of the full job (decode-free text files -> parse -> attribution ->
Delta + Kafka) against a plain Spark job that reads, splits and writes the same lines to
Parquet (the machine's practical limit), and how throughput changes with 10k / 100k / 1M
ownership intervals. One run, same session, same files; figures are ratios measured together,
after an unmeasured warm-up (a plain split and a backfill of a tenth of the files).

Run: ``python -m bench.pipeline [--minutes M --flows-per-minute F --sizes 10000,100000,1000000]``
(needs the local Kafka broker for the Kafka sink; ``--no-kafka`` measures Delta only).
Writes bench/results/pipeline.json and prints one line.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from bench import git_commit, phase_seconds
from spark_jobs import config
from spark_jobs.jobs.enrich_flows import ENRICHED_TABLE_PROPERTIES, run_backfill
from spark_jobs.session import build_session
from spark_jobs.sim.runner import SimConfig, run
from spark_jobs.sinks import delta
from spark_jobs.sinks.batch_parts import concurrently
from spark_jobs.sinks.kafka import ensure_topics, publish_batch
from spark_jobs.sinks.ownership import apply_observation, write_cidr_labels
from spark_jobs.sources.ownership import (
    cidr_labels_df,
    internet_labels,
    read_ip_ranges,
    read_snapshot_observation,
    read_vpc_cidrs,
)
from spark_jobs.transforms.ip import to_ip_key
from spark_jobs.transforms.output import to_kafka_messages

RESULTS = Path(__file__).resolve().parent / "results" / "pipeline.json"


def simulated_files(sim: Path, minutes: int, apps: int, flows_per_minute: int) -> str:
    """The simulator's flow-log files (no ground truth, no malformed lines) under ``sim``;
    returns their folder."""
    run(SimConfig(out=sim, minutes=minutes, apps=apps, flows_per_minute=flows_per_minute,
                  write_truth=False, malformed_share=0.0))  # fmt: skip
    return str(sim / "flowlogs")


def _plain_split(spark: SparkSession, files: str, out: str) -> tuple[int, float]:
    started = time.monotonic()
    reader = spark.read.option("recursiveFileLookup", "true")
    lines = reader.text(files).where(~F.col("value").startswith("version"))
    parts = lines.select(F.split("value", " ").alias("f"))
    parts.select(*[F.col("f")[i].alias(f"c{i}") for i in range(14)]).write.parquet(out)
    elapsed = time.monotonic() - started
    return spark.read.parquet(out).count(), elapsed


def _pad_ownership(spark: SparkSession, path: str, total: int) -> None:
    """Grow the ownership table to ``total`` intervals with closed intervals of addresses
    (100.64.0.0/10 space) that no flow uses: the join's work grows, the answers do not."""
    have = spark.read.format("delta").load(path).count()
    extra = max(total - have, 0)
    if not extra:
        return
    rows = spark.range(extra).select(
        F.concat_ws(
            ".",
            F.lit(100),
            (F.lit(64) + (F.col("id") / 65536 % 64)).cast("int"),
            (F.col("id") / 256 % 256).cast("int"),
            (F.col("id") % 256).cast("int"),
        ).alias("ip")
    )
    template = spark.read.format("delta").load(path).limit(1)
    filler = rows.crossJoin(template.drop("ip", "ip_key", "valid_from", "valid_to", "last_seen"))
    filler = filler.select(
        "*",
        to_ip_key(F.col("ip")).alias("ip_key"),
        F.lit("2000-01-01 00:00:00").cast("timestamp").alias("valid_from"),
        F.lit("2000-01-02 00:00:00").cast("timestamp").alias("valid_to"),
        F.lit("2000-01-01 12:00:00").cast("timestamp").alias("last_seen"),
    )
    filler.select(*spark.read.format("delta").load(path).columns).write.format("delta").mode(
        "append"
    ).save(path)


def add_no_warm_up(p: argparse.ArgumentParser) -> None:
    """The option of the benchmarks that warm the JVM with one whole backfill first."""
    p.add_argument(
        "--no-warm-up",
        action="store_true",
        help="skip the unmeasured backfill that warms the JVM first (a session already warm)",
    )


def _backfill(spark: SparkSession, base: dict[str, Any], root: Path, files: str) -> dict[str, Any]:
    """One backfill run: seconds, batches, and seconds per batch phase summed over batches."""
    cfg = config.load("conf/local.yaml", {**base, "paths": {"root": str(root)}})
    started = time.monotonic()
    writer = run_backfill(spark, cfg, files, "text")
    seconds = time.monotonic() - started
    metrics: list[dict[str, Any]] = list(writer.metrics)
    return {"seconds": seconds, "batches": len(metrics),
            "batch_seconds": round(sum(float(m["duration_s"]) for m in metrics), 2),
            "phase_s": phase_seconds(metrics)}  # fmt: skip


def _dimension_tables(spark: SparkSession, sim: Path, root: Path) -> Path:
    """``root`` with the simulation's ownership table (its snapshots applied in order) and its
    CIDR labels."""
    own = f"{root}/ownership"
    for snap in sorted(str(f) for f in (sim / "inventory").glob("snapshot-*.jsonl")):
        apply_observation(spark, own, read_snapshot_observation(spark, [snap]))
    labels = read_ip_ranges(str(sim / "ip-ranges.json")) + read_vpc_cidrs(str(sim / "vpcs.json"))
    write_cidr_labels(cidr_labels_df(spark, labels + internet_labels()), f"{root}/cidr_labels")
    return root


@dataclass
class OwnershipRoots:
    """Roots for one benchmark's runs, each with the simulation's ownership table padded to a
    size and its CIDR labels. The snapshots are applied once and each size is padded once;
    every further root gets a copy of those tables: a run only reads them, and a Delta table's
    log names its files relative to the table, so a copied folder is the same table."""

    spark: SparkSession
    sim: Path
    work: Path
    _base: Path | None = None
    _by_size: dict[int, Path] = field(default_factory=dict)

    def root(self, dest: Path, size: int) -> Path:
        """``dest``, holding the ownership table at ``size`` intervals and the CIDR labels."""
        built = self._by_size.get(size)
        if built is not None:
            _copy_tables(built, dest)
            return dest
        if self._base is None:
            self._base = _dimension_tables(self.spark, self.sim, self.work / "dimensions")
        _copy_tables(self._base, dest)
        _pad_ownership(self.spark, str(dest / "ownership"), size)
        self._by_size[size] = dest
        return dest


def _copy_tables(source: Path, dest: Path) -> None:
    for table in ("ownership", "cidr_labels"):
        shutil.copytree(source / table, dest / table)


def _warm_up(
    spark: SparkSession, base: dict[str, Any], roots: OwnershipRoots, size: int, share: float
) -> dict[str, Any]:
    """A plain split and a backfill of a ``share`` of the files, not measured: the JVM's
    just-in-time compiler and Spark's compiled-code cache are then warm for every measured
    run alike (without it the first measured run, and so the ratio, would pay for both)."""
    started = time.monotonic()
    sim, work = roots.sim, roots.work
    names = sorted((sim / "flowlogs").rglob("*.log.gz"))
    picked = names[:: max(round(1 / share), 1)] if share > 0 else []
    if not picked:
        return {"files": 0, "seconds": 0.0}
    slice_dir = work / "warm-files"
    for f in picked:
        (slice_dir / f.relative_to(sim / "flowlogs")).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(f, slice_dir / f.relative_to(sim / "flowlogs"))
    _plain_split(spark, str(slice_dir), str(work / "warm-plain"))
    root = roots.root(work / "warm", size)
    _backfill(spark, {**base, "kafka": {**base["kafka"], "topic": f"bench.{work.name}.warm"}},
              root, str(slice_dir))  # fmt: skip
    return {"files": len(picked), "of_files": len(names),
            "seconds": round(time.monotonic() - started, 1)}  # fmt: skip


def _sinks_alone(
    spark: SparkSession, cfg: config.DredgeConfig, enriched: str, work: Path, kafka: bool
) -> dict[str, Any]:
    """The output floor: the rows a backfill wrote (its enriched table, read back) written
    again by the job's two sinks alone, side by side as the job runs them - a Delta table
    partitioned and with the statistics columns of the enriched table, and the Kafka messages
    in transactions - with no parse and no attribution. What that takes bounds the whole job's
    throughput from above on this machine."""
    rows = spark.read.format("delta").load(enriched)
    n = rows.count()
    out = str(work / "sinks-alone")
    delta.ensure_table(spark, out, rows.schema, ("event_date", "event_hour"),
                       ENRICHED_TABLE_PROPERTIES)  # fmt: skip
    k = cfg.kafka
    topic = f"{k.topic}.sinks-alone"

    def to_delta() -> None:
        delta.write_batch(rows, out, app_id="bench-sinks-alone", batch_id=0,
                          partition_by=("event_date", "event_hour"), since=-1,
                          first_attempt=True)  # fmt: skip

    published: list[int] = []

    def to_kafka() -> None:
        sent, _ = publish_batch(
            to_kafka_messages(rows, 0), 0, bootstrap=k.bootstrap_servers, topic=topic,
            app_id=f"bench-sinks-alone-{work.name}", tasks=k.producer_tasks, rows=n,
        )  # fmt: skip
        published.append(sent)

    if kafka:
        ensure_topics(k.bootstrap_servers, topic, k.topic_partitions, {})
    started = time.monotonic()
    concurrently(to_delta, *([to_kafka] if kafka else []))
    seconds = time.monotonic() - started
    return {"rows": n, "kafka_published": sum(published), "seconds": round(seconds, 2),
            "flows_per_s": round(n / seconds)}  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; returns 0."""
    p = argparse.ArgumentParser(prog="python -m bench.pipeline")
    p.add_argument("--minutes", type=int, default=10)
    p.add_argument("--flows-per-minute", type=int, default=60_000)
    p.add_argument("--apps", type=int, default=40)
    p.add_argument("--sizes", default="10000,100000,1000000")
    p.add_argument("--no-kafka", action="store_true")
    p.add_argument(
        "--warm-up-share",
        type=float,
        default=0.1,
        help="share of the files backfilled once, unmeasured, first (0: none)",
    )
    p.add_argument("--out", default=str(RESULTS))
    args = p.parse_args(argv)
    measured = git_commit()
    work = Path(tempfile.mkdtemp(prefix="dredge-bench-"))
    try:
        sim = work / "sim"
        files = simulated_files(sim, args.minutes, args.apps, args.flows_per_minute)
        spark = build_session(config.load("conf/local.yaml").spark)
        base: dict[str, Any] = {
            "kafka": {"enabled": not args.no_kafka, "topic": f"bench.{work.name}"},
            "stream": {"query_name": "bench"},
        }
        sizes = [int(s) for s in args.sizes.split(",")]
        roots = OwnershipRoots(spark, sim, work)
        warm = _warm_up(spark, base, roots, sizes[0], args.warm_up_share)
        n_lines, plain_s = _plain_split(spark, files, str(work / "plain"))
        runs = []
        for size in sizes:
            root = roots.root(work / f"own{size}", size)
            base["kafka"]["topic"] = f"bench.{work.name}.{size}"
            done = _backfill(spark, base, root, files)
            seconds = done.pop("seconds")
            runs.append({"ownership_intervals": size, "seconds": round(seconds, 2),
                         "flows_per_s": round(n_lines / seconds), **done})  # fmt: skip
        first_run = {**base, "paths": {"root": str(work / f"own{sizes[0]}")}}
        floor_cfg = config.load("conf/local.yaml", first_run)  # the first run's tables
        enriched = floor_cfg.paths.resolve("enriched")
        alone = _sinks_alone(spark, floor_cfg, enriched, work, not args.no_kafka)
        plain_rate = n_lines / plain_s
        first, last = runs[0]["flows_per_s"], runs[-1]["flows_per_s"]
        result = {
            "lines": n_lines,
            "plain_split_to_parquet": {
                "seconds": round(plain_s, 2),
                "flows_per_s": round(plain_rate),
            },
            "dredge_backfill": runs,
            "warm_up": warm,
            "sinks_alone": {**alone, "ratio_vs_plain": round(alone["flows_per_s"] / plain_rate, 3)},
            "ratio_vs_plain": round(first / plain_rate, 3),
            "slowdown_smallest_to_largest_ownership": round(first / last, 3),
            "kafka": not args.no_kafka,
            "cores": os.cpu_count(),
            "load_avg_1m": round(os.getloadavg()[0], 2),
            **measured,
        }
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
        print(f"bench.pipeline: {n_lines} lines; dredge backfill {first} flows/s "
              f"(plain split {round(plain_rate)} flows/s, ratio {result['ratio_vs_plain']}; "
              f"its sinks alone {alone['flows_per_s']} flows/s); "
              f"ownership {runs[0]['ownership_intervals']}->{runs[-1]['ownership_intervals']}: "
              f"x{result['slowdown_smallest_to_largest_ownership']} slower")  # fmt: skip
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
