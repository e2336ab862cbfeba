"""``dredge demo``: the whole pipeline on local services, with a report.

1. simulate a fleet for a few minutes: envelopes into kinesalite, inventory snapshots and the
   ground truth to ``<root>/sim``;
2. apply the inventory snapshots except the last ones (ownership lags the flows, as in life);
3. run the streaming job until Kinesis is drained: flows newer than ownership are *pending*;
4. apply the remaining snapshots, nudge the stream, run again: pending flows resolve;
5. report: accuracy against the ground truth next to a naive current-owner join, top
   cross-region pairs, bytes by region/AZ over time, outcome counts -> ``reports/demo/``.

The console gets one line per step with its duration (and the stream's line per batch), then
the accuracy table, the top cross-region pairs and the report's path. ``--metrics-json PATH``
keeps every batch's metrics as JSON lines (:mod:`spark_jobs.console`).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from spark_jobs import console, report
from spark_jobs.config import DredgeConfig
from spark_jobs.jobs import refresh_ownership
from spark_jobs.jobs.enrich_flows import load_config, run_stream
from spark_jobs.session import build_session
from spark_jobs.transforms import accuracy, rollups

HELD_BACK_SNAPSHOTS = 2
STEPS = 6


@dataclass
class _Step:
    """One numbered step of the demo; ``done`` is what it did, for its console line."""

    number: int
    began: float
    done: str = ""


@contextmanager
def _step(number: int) -> Iterator[_Step]:
    """Time a step and print ``demo: [n/6] <what it did> (<duration>)`` when it ends."""
    step = _Step(number, time.monotonic())
    yield step
    took = console.format_ms(1000 * (time.monotonic() - step.began))
    print(f"demo: [{number}/{STEPS}] {step.done} ({took})", flush=True)


def _simulate(cfg: DredgeConfig, out: Path, args: argparse.Namespace) -> str:
    from spark_jobs.sim.kinesis import KinesisSink, ensure_stream, kinesis_client
    from spark_jobs.sim.runner import SimConfig, run

    stream = cfg.source.stream_names[0]
    client = kinesis_client(cfg.source.region, cfg.source.endpoint_url)
    ensure_stream(client, stream, args.shards)
    sim = SimConfig(out=out, minutes=args.minutes, apps=args.apps, seed=args.seed,
                    flows_per_minute=args.flows_per_minute, write_files=False,
                    snapshot_every_s=60)  # fmt: skip
    done = run(sim, KinesisSink(client, stream, args.shards, throttle=False))
    return (
        f"simulated {done.flows:,} flow-log lines ({done.malformed:,} malformed) in "
        f"{done.envelopes:,} Kinesis envelopes, {done.snapshots} inventory snapshots"
    )


def _refresh(conf: str, root: str, snapshots: list[str], sim: Path) -> None:
    argv = [
        "--conf",
        conf,
        "--set",
        f"paths.root={root}",
        "--ip-ranges",
        str(sim / "ip-ranges.json"),
        "--vpc-cidrs",
        str(sim / "vpcs.json"),
    ]
    for snap in snapshots:
        argv += ["--snapshot", snap]
    code = refresh_ownership.main(argv)
    if code != 0:
        raise SystemExit(f"demo: refresh-ownership failed with exit code {code}")


def _nudge(cfg: DredgeConfig) -> None:
    """A CloudWatch CONTROL_MESSAGE gives the stream a new batch in which pending flows are
    re-attributed (the job re-attributes held flows whenever a batch runs)."""
    import gzip

    import boto3

    body = {"messageType": "CONTROL_MESSAGE", "owner": "CloudwatchLogs", "logGroup": "",
            "logStream": "", "subscriptionFilters": [], "logEvents": []}  # fmt: skip
    client = boto3.client("kinesis", region_name=cfg.source.region,
                          endpoint_url=cfg.source.endpoint_url)  # fmt: skip
    client.put_record(StreamName=cfg.source.stream_names[0], PartitionKey="nudge",
                      Data=gzip.compress(json.dumps(body).encode()))  # fmt: skip


@dataclass(frozen=True)
class _Findings:
    """What the report found, for the console's last lines."""

    page: Path
    summary: str
    counts: pd.DataFrame
    basis: pd.DataFrame
    reasons: pd.DataFrame
    pairs: pd.DataFrame
    misattributed: int


def _report(spark: SparkSession, cfg: DredgeConfig, sim: Path, out: Path) -> _Findings:
    out.mkdir(parents=True, exist_ok=True)
    enriched = spark.read.format("delta").load(cfg.paths.resolve("enriched"))
    truth = spark.read.parquet(str(sim / "truth" / "flows"))
    owners = spark.read.format("delta").load(cfg.paths.resolve("ownership"))
    current = owners.where(F.col("valid_to").isNull())
    judged = accuracy.with_naive_outcomes(
        accuracy.with_dredge_outcomes(accuracy.with_truth(enriched, truth)), current
    )
    counts: pd.DataFrame = accuracy.outcome_counts(judged).toPandas()
    sides = accuracy.dredge_sides(judged)
    basis: pd.DataFrame = accuracy.basis_counts(sides).toPandas()
    reasons: pd.DataFrame = accuracy.unattributed_reasons(sides).toPandas()
    pairs: pd.DataFrame = rollups.top_cross_region_pairs(enriched).toPandas()
    by_minute: pd.DataFrame = rollups.bytes_by_region_az_minute(enriched).toPandas()
    statuses: pd.DataFrame = rollups.attribution_status_counts(enriched).toPandas()
    pending = spark.read.format("delta").load(cfg.paths.resolve("pending")).count()
    quarantined = spark.read.format("delta").load(cfg.paths.resolve("quarantine")).count()
    images = [report.chart_accuracy(counts, out), report.chart_statuses(statuses, out)]
    if not pairs.empty:
        images.append(report.chart_cross_region(pairs, out))
    if not by_minute.empty:
        images.append(report.chart_bytes_over_time(by_minute, out))
    summary = (f"{enriched.count():,} final flows, {pending:,} still pending, "
               f"{quarantined:,} lines quarantined")  # fmt: skip
    page = report.write_html(out, "Dredge demo", [summary],
                             {"Accuracy (flow sides)": counts,
                              "Dredge's sides by how they were attributed": basis,
                              "Why sides with a true owner stayed unattributed": reasons,
                              "Top cross-region app pairs": pairs,
                              "Attribution status": statuses}, images)  # fmt: skip
    mis = counts[(counts["method"] == "dredge") & (counts["outcome"] == "misattributed")]
    return _Findings(page.resolve(), summary, counts, basis, reasons, pairs,
                     int(mis["sides"].sum()))  # fmt: skip


def _count(value: object) -> int:
    return value if isinstance(value, int) else 0


def _streamed(metrics: Sequence[dict[str, object]]) -> str:
    """What a run of the stream did, from its batches' metrics."""
    n, pending = len(metrics), _count(metrics[-1].get("flows_pending")) if metrics else 0
    lines, final, bad = (
        sum(_count(m.get(k)) for m in metrics)
        for k in ("lines_parsed", "flows_final", "quarantined")
    )
    return (
        f"{n} batch{'es' if n != 1 else ''}, {lines:,} lines, {final:,} flows final, "
        f"{pending:,} pending, {bad:,} quarantined"
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dredge demo")
    parser.add_argument("--conf", default="conf/local.yaml")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--root", default="data/demo", help="demo data folder (wiped first)")
    parser.add_argument("--report", default="reports/demo")
    parser.add_argument("--minutes", type=int, default=5)
    parser.add_argument("--apps", type=int, default=24)
    parser.add_argument("--flows-per-minute", type=int, default=4000)
    parser.add_argument("--shards", type=int, default=2)
    parser.add_argument("--seed", type=int, default=7)
    console.add_arguments(parser)
    return parser


def main(argv: Sequence[str]) -> int:
    """Run the demo; exits non-zero when Dredge misattributes anything."""
    args = _parser().parse_args(argv)
    # the steps' lines say what happened; the jobs' own INFO logs would repeat it
    console.configure(args.metrics_json, log_level=logging.WARNING)
    # the demo talks only to the local emulators, which accept any credentials
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        os.environ.setdefault(key, "dredge-local")
    started = time.monotonic()
    root = Path(args.root).resolve()
    shutil.rmtree(root, ignore_errors=True)
    args.set = [*args.set, f"paths.root={root}", "stream.trigger=available_now",
                f"source.stream_names=dredge-demo-{int(time.time())}"]  # fmt: skip
    cfg = load_config(args)
    sim = root / "sim"
    with _step(1) as step:
        step.done = _simulate(cfg, sim, args)
    snapshots = sorted(str(p) for p in (sim / "inventory").glob("snapshot-*.jsonl"))
    early, late = snapshots[:-HELD_BACK_SNAPSHOTS], snapshots[-HELD_BACK_SNAPSHOTS:]
    with _step(2) as step:
        spark = build_session(cfg.spark)
        _refresh(args.conf, str(root), early, sim)
        step.done = f"applied {len(early)} of {len(snapshots)} inventory snapshots (ownership lags)"
    with _step(3) as step:
        step.done = "streamed Kinesis until drained: " + _streamed(run_stream(spark, cfg).metrics)
    with _step(4) as step:
        _refresh(args.conf, str(root), late, sim)
        step.done = f"applied the last {len(late)} snapshots (ownership catches up)"
    with _step(5) as step:
        _nudge(cfg)
        step.done = "re-attributed the pending flows: " + _streamed(run_stream(spark, cfg).metrics)
    with _step(6) as step:
        found = _report(spark, cfg, sim, Path(args.report))
        step.done = f"wrote the report: {found.summary}"
    print("\ndemo: accuracy against the ground truth (each flow has two sides)")
    print("\n".join(report.accuracy_lines(found.counts)))
    print(report.basis_line(found.basis))
    print("\ndemo: why Dredge left sides with a true owner unattributed")
    print("\n".join(report.reason_lines(found.reasons)))
    print("\ndemo: top cross-region app pairs")
    print("\n".join(report.pairs_lines(found.pairs)) if not found.pairs.empty else "  (none)")
    took = console.format_ms(1000 * (time.monotonic() - started))
    print(f"\ndemo: report at {found.page} ({took} in all)", flush=True)
    if found.misattributed:
        print(f"demo: FAILED - Dredge misattributed {found.misattributed} flow sides")
    return 1 if found.misattributed else 0
