"""Shared by the streaming benchmarks (``bench.latency``, ``bench.stream``): a simulated fleet
as CloudWatch envelopes, the ownership the refresh job would leave for it, a fresh kinesalite
stream, the job's config, and small statistics helpers."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pyspark.sql import SparkSession

from bench import git_commit
from spark_jobs import config
from spark_jobs.config import DredgeConfig
from spark_jobs.session import build_session
from spark_jobs.sim.envelopes import Envelope, ListSink
from spark_jobs.sim.kinesis import ensure_stream, kinesis_client
from spark_jobs.sim.runner import SimConfig, run
from spark_jobs.sinks.ownership import apply_observation, write_cidr_labels
from spark_jobs.sources.ownership import (
    cidr_labels_df,
    internet_labels,
    read_ip_ranges,
    read_snapshot_observation,
    read_vpc_cidrs,
)

ENDPOINT = os.environ.get("DREDGE_KINESIS_ENDPOINT", "http://127.0.0.1:4567")
KAFKA = os.environ.get("DREDGE_KAFKA_BOOTSTRAP", "127.0.0.1:9092")
REGION = "us-east-1"
SIM_MINUTES = 2


def simulate_fleet(
    work: Path, flows: int, apps: int = 30, *, files: bool = False
) -> list[Envelope]:
    """About ``flows`` flow lines of a simulated fleet as envelopes (delivery order); the
    inventory snapshots land in ``work/sim``, and with ``files`` the same lines as flow-log
    files in ``work/sim/flowlogs``."""
    sink = ListSink()
    run(SimConfig(out=work / "sim", minutes=SIM_MINUTES, apps=apps,
                  flows_per_minute=max(1, -(-flows // SIM_MINUTES)), write_files=files,
                  write_truth=False, malformed_share=0.0), sink)  # fmt: skip
    return sink.envelopes


def build_ownership(spark: SparkSession, cfg: DredgeConfig, sim: Path) -> None:
    """Ownership from every snapshot (freshness = the horizon's end, after every flow's start)
    and the CIDR labels, as the refresh job would leave them."""
    own = cfg.paths.resolve("ownership")
    for snap in sorted(str(f) for f in (sim / "inventory").glob("snapshot-*.jsonl")):
        apply_observation(spark, own, read_snapshot_observation(spark, [snap]))
    labels = read_ip_ranges(str(sim / "ip-ranges.json")) + read_vpc_cidrs(str(sim / "vpcs.json"))
    write_cidr_labels(
        cidr_labels_df(spark, labels + internet_labels()), cfg.paths.resolve("cidr_labels")
    )


def new_stream(shards: int) -> str:
    """A fresh, ACTIVE kinesalite stream with a unique name."""
    name = f"dredge-bench-{uuid.uuid4().hex[:8]}"
    ensure_stream(kinesis_client(REGION, ENDPOINT), name, shards)
    return name


def job_config(root: Path, stream: str, topic: str, trigger: str) -> DredgeConfig:
    """conf/local.yaml pointed at ``root``, ``stream`` and ``topic``."""
    return config.load(
        "conf/local.yaml",
        {
            "paths": {"root": str(root)},
            "source": {"stream_names": [stream], "endpoint_url": ENDPOINT},
            "kafka": {"topic": topic, "bootstrap_servers": KAFKA},
            "stream": {"trigger": trigger, "trigger_interval": "1 second",
                       "query_name": f"bench-{uuid.uuid4().hex[:8]}"},
        },
    )  # fmt: skip


def local_env() -> None:
    """Dummy credentials for the local emulators; workers run this interpreter."""
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "test")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "test")
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)


def percentiles(values: list[float]) -> dict[str, float | None]:
    """p50/p95/p99/max in seconds (None when empty)."""
    if not values:
        return {k: None for k in ("p50", "p95", "p99", "max")}
    arr = np.asarray(values)
    p50, p95, p99 = np.percentile(arr, [50, 95, 99])
    return {"p50": round(float(p50), 3), "p95": round(float(p95), 3),
            "p99": round(float(p99), 3), "max": round(float(arr.max()), 3)}  # fmt: skip


def progress_ms(query: Any) -> dict[str, float]:
    """Median ``durationMs`` per phase over the query's batches that read rows."""
    runs = [p["durationMs"] for p in query.recentProgress if p["numInputRows"] > 0]
    keys = ("triggerExecution", "latestOffset", "addBatch", "walCommit", "commitOffsets")
    return {k: float(np.median([r.get(k, 0) for r in runs])) for k in keys} if runs else {}


def load_args(
    prog: str, doc: str | None, results: Path, argv: Sequence[str] | None
) -> argparse.Namespace:
    """``--rate``, ``--seconds``, ``--shards``, ``--out``: the options of the benches that put
    a steady load into a stream while the query runs."""
    p = argparse.ArgumentParser(prog=prog, description=doc)
    p.add_argument("--rate", type=float, default=300.0, help="flow lines per second")
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument("--shards", type=int, default=2)
    p.add_argument("--out", default=str(results))
    return p.parse_args(argv)


def run_bench(
    name: str, out: str, measure: Callable[[SparkSession, Path], dict[str, Any]]
) -> dict[str, Any]:
    """What every streaming bench's ``main`` does around its ``measure``: the local services'
    settings, the measured commit, a scratch folder (removed afterwards), the job's own
    SparkSession; the figures are written to ``out`` as JSON and returned."""
    local_env()
    measured = git_commit()
    work = Path(tempfile.mkdtemp(prefix=f"dredge-bench-{name}-"))
    try:
        spark = build_session(config.load("conf/local.yaml").spark)
        result = {**measure(spark, work), **measured}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(json.dumps(result, indent=2) + "\n")
    return result
