"""``python -m spark_jobs.jobs.druid_demo``: the whole path into a real Druid, checked.

A small known set of flow records goes into Kinesis (kinesalite), through the real enrichment
job (``run_stream``, available-now) into Delta and the transactional Kafka topic; a Druid Kafka
supervisor is submitted for that topic; once Druid holds every counted flow, two aggregates
are read from Druid SQL and computed from the Delta table with Spark, printed side by side.
Exit status 0 when both agree exactly, 1 when they differ, 2 when Druid never caught up.

Needs the local services (``scripts/services.sh up``) and Druid (``scripts/druid.sh up``);
everything it creates is named with a fresh run id (stream, topic, tables, datasource).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import cast

from pyspark.sql import SparkSession

from spark_jobs import config
from spark_jobs.config import DredgeConfig
from spark_jobs.druid import aggregates as agg
from spark_jobs.druid import demo_data
from spark_jobs.druid.client import DruidClient
from spark_jobs.druid.compare import Comparison, side_by_side
from spark_jobs.druid.spec import DEFAULT_SPEC_PATH, load_template, supervisor_spec


@dataclass(frozen=True)
class DemoResult:
    """What the demo compared, and how long its steps took (seconds)."""

    data_source: str
    published_messages: int
    expected_rows: int
    comparisons: tuple[Comparison, ...]
    row_stats: dict[str, int]
    timings: dict[str, float]

    @property
    def is_equal(self) -> bool:
        return all(c.is_equal for c in self.comparisons)


def demo_config(conf_path: str, run: str, root: str | None = None) -> DredgeConfig:
    """The given config with run-unique names and an available-now trigger; tables under
    ``root`` (default: ``<paths.root>/druid-demo/<run>``)."""
    base = config.load(conf_path)
    return config.load(
        conf_path,
        {
            "paths": {"root": root or f"{base.paths.resolve('root')}/druid-demo/{run}"},
            "source": {"stream_names": [f"dredge-druid-demo-{run}"]},
            "kafka": {"enabled": True, "topic": f"{base.kafka.topic}.druid-demo.{run}"},
            "stream": {"trigger": "available_now", "query_name": f"druid-demo-{run}"},
        },
    )


def seed_ownership(spark: SparkSession, cfg: DredgeConfig, base: datetime) -> None:
    """Ownership observations and CIDR labels for the demo's apps."""
    from spark_jobs.sinks.ownership import apply_observation, write_cidr_labels
    from spark_jobs.sources.ownership import (
        cidr_labels_df,
        internet_labels,
        label_row,
        read_snapshot_observation,
    )

    folder = Path(cfg.paths.resolve("root")) / "snapshots"
    for path in demo_data.write_snapshots(folder, base):
        apply_observation(
            spark, cfg.paths.resolve("ownership"), read_snapshot_observation(spark, [path])
        )
    s3 = label_row("198.51.100.0/24", "aws_service", "S3", "us-east-1", "AWS:S3")
    write_cidr_labels(
        cidr_labels_df(spark, [s3, *internet_labels()]), cfg.paths.resolve("cidr_labels")
    )


def put_records(cfg: DredgeConfig, base: datetime) -> int:
    """Create the run's stream in kinesalite and put the demo envelopes; returns the count."""
    from spark_jobs.sim.kinesis import ensure_stream, kinesis_client

    client = kinesis_client(cfg.source.region, cfg.source.endpoint_url)
    stream = cfg.source.stream_names[0]
    ensure_stream(client, stream, shards=2)
    records = demo_data.kinesis_records(base)
    out = client.put_records(StreamName=stream, Records=records)
    if out.get("FailedRecordCount"):
        raise RuntimeError(f"kinesis: {out['FailedRecordCount']} records failed: {out}")
    return len(records)


def compare(
    spark: SparkSession, cfg: DredgeConfig, druid: DruidClient, data_source: str, top: int
) -> tuple[Comparison, ...]:
    """Both aggregates from Druid and from the Delta table."""
    enriched = spark.read.format("delta").load(cfg.paths.resolve("enriched"))
    region_minute = Comparison(
        "bytes by (src_region, dst_region) per minute",
        agg.REGION_MINUTE_COLUMNS,
        list(agg.druid_region_minute(druid, data_source)),
        list(agg.region_minute_rows(agg.to_region_minute(enriched).collect())),
    )
    pairs = Comparison(
        f"top {top} cross-region app pairs by bytes",
        agg.APP_PAIR_COLUMNS,
        list(agg.druid_cross_region_pairs(druid, data_source, top)),
        list(agg.app_pair_rows(agg.to_cross_region_pairs(enriched, top).collect())),
    )
    return region_minute, pairs


@dataclass(frozen=True)
class DemoOptions:
    """How to run the demo against Druid."""

    data_source: str
    spec_path: str = str(DEFAULT_SPEC_PATH)
    timeout_s: float = 300.0
    top: int = agg.DEFAULT_TOP_PAIRS
    keep_supervisor: bool = False


def run_demo(
    spark: SparkSession, cfg: DredgeConfig, druid: DruidClient, opts: DemoOptions
) -> DemoResult:
    """Kinesis -> enrichment -> Delta + Kafka -> Druid, then both aggregates."""
    from spark_jobs.jobs.enrich_flows import run_stream

    timings: dict[str, float] = {}
    clock = time.monotonic()

    def lap(name: str) -> None:
        nonlocal clock
        timings[name] = round(time.monotonic() - clock, 1)
        clock = time.monotonic()
        print(f"druid-demo: {name} done in {timings[name]}s", file=sys.stderr, flush=True)

    base = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=60)
    seed_ownership(spark, cfg, base)
    put_records(cfg, base)
    lap("seed_and_put")
    writer = run_stream(spark, cfg)
    published = sum(cast(int, m.get("kafka_published", 0)) for m in writer.metrics)
    enriched = spark.read.format("delta").load(cfg.paths.resolve("enriched"))
    expected = agg.filter_counted_flows(enriched).count()
    lap("enrichment_job")
    spec = supervisor_spec(
        load_template(opts.spec_path),
        cfg.kafka.bootstrap_servers,
        cfg.kafka.topic,
        data_source=opts.data_source,
        kafka_options=dict(cfg.kafka.options),
    )
    data_source = druid.submit_supervisor(spec)
    try:
        druid.wait_for_rows(data_source, expected, timeout_s=opts.timeout_s)
        druid.wait_for_read(data_source, published, timeout_s=opts.timeout_s)
        lap("druid_ingestion")
        comparisons = compare(spark, cfg, druid, data_source, opts.top)
        row_stats = druid.supervisor_row_stats(data_source)
        lap("queries")
    finally:
        if not opts.keep_supervisor:
            druid.discard_ingestion(data_source)
    return DemoResult(data_source, published, expected, comparisons, row_stats, timings)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="druid-demo", description=__doc__.splitlines()[0])
    p.add_argument("--conf", default="conf/local.yaml")
    p.add_argument("--spec", default=str(DEFAULT_SPEC_PATH))
    p.add_argument("--overlord", default="http://127.0.0.1:8081")
    p.add_argument("--broker", default="http://127.0.0.1:8082")
    p.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for Druid")
    p.add_argument("--top", type=int, default=agg.DEFAULT_TOP_PAIRS)
    p.add_argument("--keep-supervisor", action="store_true", help="leave it running after")
    p.add_argument("--run", default=uuid.uuid4().hex[:8], help="run id used in every name")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the demo; print both results side by side; non-zero exit when they differ."""
    from spark_jobs.session import build_session

    args = parse_args(argv)
    # Spark's Python workers need this venv (pyarrow for the Kinesis source, confluent-kafka).
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    cfg = demo_config(args.conf, args.run)
    druid = DruidClient(overlord_url=args.overlord, broker_url=args.broker)
    spark = build_session(cfg.spark)
    started = time.monotonic()
    try:
        opts = DemoOptions(
            data_source=f"dredge_flows_demo_{args.run}",
            spec_path=args.spec,
            timeout_s=args.timeout,
            top=args.top,
            keep_supervisor=args.keep_supervisor,
        )
        result = run_demo(spark, cfg, druid, opts)
    except TimeoutError as err:
        print(f"druid-demo: {err}", file=sys.stderr)
        return 2
    for comparison in result.comparisons:
        print(side_by_side(comparison), end="\n\n")
        for line in comparison.differences():
            print(f"  {line}")
    total = round(time.monotonic() - started, 1)
    verdict = "EQUAL" if result.is_equal else "DIFFERENT"
    print(
        f"druid-demo: {verdict}; datasource {result.data_source}: {result.published_messages} "
        f"Kafka messages, {result.expected_rows} flows counted; Druid row stats {result.row_stats}; timings (s) {result.timings} "
        f"total {total}"
    )
    return 0 if result.is_equal else 1


if __name__ == "__main__":
    sys.exit(main())
