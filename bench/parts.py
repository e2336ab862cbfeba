"""Where a backfill's time goes: each part of the micro-batch alone, on the bench.pipeline
input, in one session after a warm-up, each part measured to its floor (a ``noop`` sink, a
cached input) beside the plain split that bench.pipeline's ratio is measured against.

Parts: the plain split; read + parse to ``noop``; + attribution to ``noop`` (the parsed lines
cached, as the batch writer does); the enriched rows into a cache (attribution once); the
enriched Delta write from that cache; the Kafka publication from the files that write added
(as the batch writer builds its messages); the whole backfill.

Run: ``python -m bench.parts [--minutes M --flows-per-minute F]`` (needs the local Kafka
broker). Writes bench/results/parts.json and prints one line per part.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pyspark.sql import DataFrame, Observation, SparkSession
from pyspark.sql import functions as F

from bench import git_commit
from bench.pipeline import (
    OwnershipRoots,
    _backfill,
    _plain_split,
    add_no_warm_up,
    simulated_files,
)
from spark_jobs import config
from spark_jobs.jobs.enrich_flows import ENRICHED_TABLE_PROPERTIES
from spark_jobs.schemas import QUARANTINE_SCHEMA
from spark_jobs.session import build_session
from spark_jobs.sinks import delta
from spark_jobs.sinks.kafka import ensure_topics, publish_batch
from spark_jobs.sources.files import read_flow_log_text
from spark_jobs.sources.ownership import freshness_of, scope_freshness_of
from spark_jobs.transforms.batch import AttributionRules, BatchInputs, batch_outputs
from spark_jobs.transforms.enrich import ownership_ranges
from spark_jobs.transforms.output import PARTITION_COLUMNS, to_kafka_messages
from spark_jobs.transforms.parse import parse_flow_lines_by_format

RESULTS = Path(__file__).resolve().parent / "results" / "parts.json"


def _timed(fn: Callable[[], object]) -> float:
    started = time.monotonic()
    fn()
    return round(time.monotonic() - started, 2)


def _noop(df: DataFrame) -> None:
    df.write.format("noop").mode("overwrite").save()


def _parsed(spark: SparkSession, files: str) -> DataFrame:
    lines = read_flow_log_text(spark, files)
    headers = [r.log_format for r in lines.select("log_format").distinct().collect()]
    return parse_flow_lines_by_format(lines, headers)


def _outputs(spark: SparkSession, parsed: DataFrame, root: Path) -> Any:
    owners = spark.read.format("delta").load(str(root / "ownership"))
    labels = spark.read.format("delta").load(str(root / "cidr_labels"))
    state = delta.table_state(spark, str(root / "ownership"))
    props = state.properties if state else {}
    lengths = [r.prefix_len for r in labels.select("prefix_len").distinct().collect()]
    rules = AttributionRules(
        freshness=_naive(freshness_of(props)),
        scope_freshness={k: _naive(v) for k, v in scope_freshness_of(props).items()},
        prefix_lengths=lengths,
        broadcast_owners=True,
        now=_naive(freshness_of(props)),
        max_pending_minutes=60,
    )
    no_bad = spark.createDataFrame([], QUARANTINE_SCHEMA)
    owners = ownership_ranges(owners).cache()
    inputs = BatchInputs(parsed, no_bad, None, owners, labels.cache())
    # observed as the batch writer's enriched write is: the same plan (without an observation
    # Spark pushes the pending filter into the joins, a plan the job never runs)
    return batch_outputs(inputs, rules, Observation())


def _naive(value: Any) -> Any:
    return value.replace(tzinfo=None) if value is not None else None


def main(argv: Sequence[str] | None = None) -> int:
    """Run the parts; returns 0."""
    p = argparse.ArgumentParser(prog="python -m bench.parts")
    p.add_argument("--minutes", type=int, default=10)
    p.add_argument("--flows-per-minute", type=int, default=60_000)
    p.add_argument("--apps", type=int, default=40)
    p.add_argument("--out", default=str(RESULTS))
    add_no_warm_up(p)
    args = p.parse_args(argv)
    measured = git_commit()
    work = Path(tempfile.mkdtemp(prefix="dredge-parts-"))
    try:
        sim = work / "sim"
        files = simulated_files(sim, args.minutes, args.apps, args.flows_per_minute)
        spark = build_session(config.load("conf/local.yaml").spark)
        roots = OwnershipRoots(spark, sim, work)
        root = roots.root(work / "own", 10_000)
        base: dict[str, Any] = {"kafka": {"enabled": True, "topic": f"bench.{work.name}"},
                                "stream": {"query_name": "bench-parts"}}  # fmt: skip
        if not args.no_warm_up:
            _backfill(spark, base, roots.root(work / "warm", 10_000), files)
        lines, plain = _plain_split(spark, files, str(work / "plain"))
        parts: dict[str, float] = {"plain_split_to_parquet": round(plain, 2)}
        parts["read_parse_noop"] = _timed(lambda: _noop(_parsed(spark, files)))
        parsed = _parsed(spark, files).cache()
        parts["fill_parsed_cache"] = _timed(parsed.count)
        out = _outputs(spark, parsed, root)
        parts["attribution_noop_from_cached_parse"] = _timed(lambda: _noop(out.enriched))
        enriched = out.enriched.cache()
        parts["fill_enriched_cache"] = _timed(enriched.count)
        target = str(work / "delta-alone")
        delta.ensure_table(spark, target, enriched.schema, ("event_date", "event_hour"),
                           ENRICHED_TABLE_PROPERTIES)  # fmt: skip
        parts["delta_write_from_cache"] = _timed(lambda: delta.write_batch(
            enriched, target, app_id="parts", batch_id=0, since=0, first_attempt=True,
            partition_by=("event_date", "event_hour")))  # fmt: skip
        k = config.load("conf/local.yaml").kafka
        topic = f"bench.{work.name}.alone"
        ensure_topics(k.bootstrap_servers, topic, k.topic_partitions, {})
        data = enriched.drop(*PARTITION_COLUMNS).schema

        def from_files() -> DataFrame:
            rows = delta.written_rows(spark, target, data, app_id="parts", batch_id=0, since=0)
            assert rows is not None  # this Delta build lists a commit's files
            return to_kafka_messages(rows, 0)

        parts["kafka_publish_from_written_files"] = _timed(lambda: publish_batch(
            from_files(), 0, bootstrap=k.bootstrap_servers, topic=topic,
            app_id=f"parts-{work.name}", tasks=k.producer_tasks, rows=lines))  # fmt: skip
        flows = F.get_json_object("value", "$.flows").cast("long")
        sent = from_files().agg(F.count(F.lit(1)).alias("n"), F.sum(flows).alias("f")).first()
        run_root = roots.root(work / "run", 10_000)
        base["kafka"]["topic"] = f"bench.{work.name}.run"
        whole = _backfill(spark, base, run_root, files)
        parts["dredge_backfill"] = round(whole["seconds"], 2)
        result = {
            "lines": lines,
            "seconds": parts,
            "flows_per_s": {name: round(lines / s) for name, s in parts.items() if s > 0},
            "ratio_vs_plain": {name: round(plain / s, 3) for name, s in parts.items() if s > 0},
            "backfill_phase_s": whole["phase_s"],
            "kafka_messages": sent.n,
            "flows_in_kafka_messages": sent.f,
            "cores": os.cpu_count(),
            "load_avg_1m": round(os.getloadavg()[0], 2),
            **measured,
        }
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
        for name, seconds in parts.items():
            print(f"bench.parts: {name:40s} {seconds:7.2f} s {round(lines / seconds):>9} lines/s")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
