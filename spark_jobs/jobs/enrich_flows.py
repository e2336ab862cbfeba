"""``dredge stream`` / ``dredge backfill``: flow records -> attributed flows in Delta + Kafka.

Also runnable as ``spark-submit spark_jobs/jobs/enrich_flows.py --conf conf/emr.yaml``.
``main`` only wires config -> source -> stage -> sink; the work lives in transforms/ and sinks/.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.streaming import StreamingQuery

from spark_jobs import config, console
from spark_jobs.config import DredgeConfig
from spark_jobs.schemas import PARSED_FLOW_SCHEMA, QUARANTINE_SCHEMA
from spark_jobs.session import build_session
from spark_jobs.sinks import delta
from spark_jobs.sinks.flow_batch import BatchTargets, Cache, FlowBatchWriter, Stage, StageResult
from spark_jobs.sinks.kafka import ensure_topics
from spark_jobs.sinks.kafka_auth import kafka_client_options
from spark_jobs.sinks.progress import ensure_progress_logger
from spark_jobs.transforms.decode import decode_records, filter_control, filter_lines, to_quarantine
from spark_jobs.transforms.enrich import ownership_ranges, with_attribution
from spark_jobs.transforms.output import (
    ENRICHED_STATS_COLUMNS,
    PARTITION_COLUMNS,
    to_enriched_rows,
)
from spark_jobs.transforms.parse import (
    parse_flow_lines,
    parse_flow_lines_by_format,
    parse_flow_lines_with_header,
)


def _no_cache(df: DataFrame) -> DataFrame:
    return df


def kinesis_stage(record_format: str, log_format: str | None) -> Stage:
    """Kinesis records -> parsed lines, bad records, control messages (a :class:`StageResult`).

    Pure: works on a streaming DataFrame too. The batch writer passes ``cache`` (persist) so
    that a micro-batch is read and decoded once for its several outputs."""

    def stage(records_df: DataFrame, cache: Cache = _no_cache) -> StageResult:
        records = cache(records_df)
        decoded = cache(decode_records(records, record_format))  # type: ignore[arg-type]
        return StageResult(
            parsed=parse_flow_lines(filter_lines(decoded), log_format),
            bad_records=to_quarantine(decoded),
            control=filter_control(decoded),
            records=records,
        )

    return stage


def text_file_stage() -> Stage:
    """Lines of S3-style text files (format from each file's header) -> parsed lines."""

    def stage(lines_df: DataFrame, cache: Cache = _no_cache) -> StageResult:
        empty = lines_df.sparkSession.createDataFrame([], QUARANTINE_SCHEMA)
        lines = cache(lines_df)
        if lines.isStreaming:
            parsed = parse_flow_lines_with_header(lines)
        else:  # a micro-batch: its few distinct headers make fixed layouts (much cheaper)
            headers = [r.log_format for r in lines.select("log_format").distinct().collect()]
            parsed = parse_flow_lines_by_format(lines, headers)
        return StageResult(
            parsed=parsed,
            bad_records=empty,
            control=empty.select("origin"),
            records=lines,
        )

    return stage


def targets_for(cfg: DredgeConfig, app_id: str) -> BatchTargets:
    """Plain sink arguments from the config."""
    p = cfg.paths
    kafka = cfg.kafka
    return BatchTargets(
        enriched=p.resolve("enriched"),
        quarantine=p.resolve("quarantine"),
        pending=p.resolve("pending"),
        ownership=p.resolve("ownership"),
        cidr_labels=p.resolve("cidr_labels"),
        plans=f"{p.resolve('checkpoints')}/{app_id}-plans",
        app_id=app_id,
        max_pending_minutes=cfg.attribution.max_pending_minutes,
        kafka_bootstrap=kafka.bootstrap_servers if kafka.enabled else None,
        kafka_topic=kafka.topic if kafka.enabled else None,
        kafka_tasks=kafka.producer_tasks,
        kafka_options=kafka_client_options(kafka.options),
        dq_sample_fraction=cfg.quality.sample_fraction,
        dq_min_attributed_share=cfg.quality.min_attributed_share,
        broadcast_max_rows=cfg.attribution.broadcast_threshold_rows,
    )


def start_query(
    source_df: DataFrame, writer: FlowBatchWriter, cfg: DredgeConfig, checkpoint: str
) -> StreamingQuery:
    """Start the ``foreachBatch`` query with the configured trigger."""
    stream = source_df.writeStream.queryName(cfg.stream.query_name).foreachBatch(writer)
    stream = stream.option("checkpointLocation", checkpoint)
    if cfg.stream.trigger == "available_now":
        stream = stream.trigger(availableNow=True)
    else:
        stream = stream.trigger(processingTime=cfg.stream.trigger_interval)
    return stream.start()


def _empty_enriched(spark: SparkSession) -> DataFrame:
    """An empty DataFrame in exactly the enriched table's schema (made by the transforms)."""
    from spark_jobs.transforms.ownership import CIDR_LABEL_SCHEMA, OWNERSHIP_SCHEMA

    flows = spark.createDataFrame([], PARSED_FLOW_SCHEMA)
    owners = ownership_ranges(spark.createDataFrame([], OWNERSHIP_SCHEMA))
    labels = spark.createDataFrame([], CIDR_LABEL_SCHEMA)
    # any freshness: without one every side is a literal "pending", and Spark warns about the
    # trivially true comparisons of that literal
    fresh = datetime(2000, 1, 1)
    attributed = with_attribution(flows, owners, labels, freshness=fresh, prefix_lengths=[])
    return to_enriched_rows(attributed)


# Set when the enriched table is created; an existing table keeps its own (change it with
# ALTER TABLE ... SET TBLPROPERTIES).
ENRICHED_TABLE_PROPERTIES = {"delta.dataSkippingStatsColumns": ",".join(ENRICHED_STATS_COLUMNS)}


def _prepare(spark: SparkSession, cfg: DredgeConfig) -> None:
    """Output tables exist (empty) before the first batch; inputs are there; topics exist;
    Delta records commit info (its ``userMetadata`` is the batch marker exactly-once needs)."""
    if str(spark.conf.get("spark.databricks.delta.commitInfo.enabled", "true")).lower() == "false":
        raise SystemExit(
            "dredge: spark.databricks.delta.commitInfo.enabled=false - Delta would drop the "
            "batch markers that keep replayed batches from being written twice"
        )
    delta.ensure_table(spark, cfg.paths.resolve("pending"), PARSED_FLOW_SCHEMA)
    delta.ensure_table(spark, cfg.paths.resolve("quarantine"), QUARANTINE_SCHEMA)
    enriched = cfg.paths.resolve("enriched")
    if not delta.table_exists(spark, enriched):
        empty = _empty_enriched(spark)
        delta.ensure_table(
            spark, enriched, empty.schema, PARTITION_COLUMNS, ENRICHED_TABLE_PROPERTIES
        )
    for name in ("ownership", "cidr_labels"):
        if not delta.table_exists(spark, cfg.paths.resolve(name)):
            raise SystemExit(
                f"dredge: no {name} table at {cfg.paths.resolve(name)}; "
                "run 'dredge refresh-ownership' first"
            )
    _check_ownership_columns(spark, cfg.paths.resolve("ownership"))
    if cfg.kafka.enabled:
        ensure_topics(
            cfg.kafka.bootstrap_servers,
            cfg.kafka.topic,
            cfg.kafka.topic_partitions,
            kafka_client_options(cfg.kafka.options),
        )


def _check_ownership_columns(spark: SparkSession, path: str) -> None:
    """An ownership table written before a column attribution needs existed stops the job at
    start, naming the migration (the refresh adds the column and fills it)."""
    from spark_jobs.transforms.ownership import OWNERSHIP_SCHEMA

    have = set(spark.read.format("delta").load(path).columns)
    missing = [c for c in OWNERSHIP_SCHEMA.names if c not in have]
    if missing:
        raise SystemExit(
            f"dredge: the ownership table at {path} has no {', '.join(missing)} column: it was "
            "written by an older Dredge. Run 'dredge refresh-ownership' once (it adds the "
            "column and fills it from the next observation), then start again"
        )


def start_stream(spark: SparkSession, cfg: DredgeConfig) -> tuple[StreamingQuery, FlowBatchWriter]:
    """Start Kinesis -> enrichment; returns the running query and its batch writer."""
    from spark_jobs.sources.kinesis.adapters import read_kinesis, source_options

    _prepare(spark, cfg)
    checkpoint = f"{cfg.paths.resolve('checkpoints')}/{cfg.stream.query_name}"
    options = source_options(cfg.source, f"{checkpoint}-source-meta")
    records = read_kinesis(spark, options, cfg.source.kind)
    stage = kinesis_stage(cfg.source.record_format, cfg.source.log_format)
    writer = FlowBatchWriter(stage, targets_for(cfg, cfg.stream.query_name))
    ensure_progress_logger(spark)  # dredge_progress lines (source lag); once per session
    return start_query(records, writer, cfg, checkpoint), writer


def run_stream(spark: SparkSession, cfg: DredgeConfig) -> FlowBatchWriter:
    """Kinesis -> enrichment until stopped (or drained, with the available_now trigger)."""
    query, writer = start_stream(spark, cfg)
    return _until_ended(spark, query, writer)


def _until_ended(
    spark: SparkSession, query: StreamingQuery, writer: FlowBatchWriter
) -> FlowBatchWriter:
    """Wait for ``query`` to end, release the writer's caches, and let the progress listener
    handle the query's last events (the driver may exit right after)."""
    try:
        query.awaitTermination()
    finally:
        writer.close()
        if not query.isActive:  # (an interrupt leaves it running: nothing to wait for)
            # the last batch's progress line is printed before the driver may exit
            ensure_progress_logger(spark).wait_terminated(str(query.runId))
    return writer


def run_backfill(
    spark: SparkSession, cfg: DredgeConfig, input_path: str, kind: str
) -> FlowBatchWriter:
    """Flow-log files -> the same transforms and sinks, ``availableNow``."""
    from spark_jobs.sources import files

    _prepare(spark, cfg)
    name = f"{cfg.stream.query_name}-backfill"
    checkpoint = f"{cfg.paths.resolve('checkpoints')}/{name}"
    if kind == "cloudwatch":
        lines = files.read_cloudwatch_envelope_files(spark, input_path, streaming=True)
        stage: Stage = _lines_stage(cfg.source.log_format)
    elif kind == "parquet":
        lines = files.read_flow_log_parquet(spark, input_path, streaming=True)
        stage = text_file_stage()
    else:
        lines = files.read_flow_log_text(spark, input_path, streaming=True)
        stage = text_file_stage()
    writer = FlowBatchWriter(stage, targets_for(cfg, name))
    cfg_now = replace(cfg, stream=replace(cfg.stream, trigger="available_now", query_name=name))
    ensure_progress_logger(spark)
    return _until_ended(spark, start_query(lines, writer, cfg_now, checkpoint), writer)


def _lines_stage(log_format: str | None) -> Stage:
    from spark_jobs.transforms.decode import filter_control as control
    from spark_jobs.transforms.decode import filter_lines as lines
    from spark_jobs.transforms.decode import to_quarantine as bad

    def stage(decoded_df: DataFrame, cache: Cache = _no_cache) -> StageResult:
        decoded = cache(decoded_df)
        return StageResult(
            parsed=parse_flow_lines(lines(decoded), log_format),
            bad_records=bad(decoded),
            control=control(decoded),
            records=decoded.select("origin", "origin_offset").distinct(),
        )

    return stage


def _parser(prog: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog)
    parser.add_argument("--conf", default="conf/local.yaml", help="YAML config (with extends)")
    console.add_arguments(parser)
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value, e.g. stream.trigger=available_now",
    )
    return parser


def load_config(args: argparse.Namespace) -> DredgeConfig:
    """The config file with ``--set`` overrides applied."""
    overrides: dict[str, object] = {}
    for item in args.set:
        overrides = config._merge(overrides, config.parse_override(item))
    return config.load(args.conf, overrides)


def main_stream(argv: Sequence[str]) -> int:
    """``dredge stream``."""
    args = _parser("dredge stream").parse_args(argv)
    cfg = load_config(args)
    console.configure(args.metrics_json)
    run_stream(build_session(cfg.spark), cfg)
    return 0


def main_backfill(argv: Sequence[str]) -> int:
    """``dredge backfill``."""
    parser = _parser("dredge backfill")
    parser.add_argument("--input", required=True, help="folder or file, local or s3://")
    parser.add_argument("--ownership", help="ownership Delta table (default: from config)")
    parser.add_argument("--output", help="enriched Delta table (default: from config)")
    parser.add_argument("--quarantine", help="quarantine Delta table (default: from config)")
    parser.add_argument("--log-format", help="format string for envelope files")
    parser.add_argument("--input-kind", choices=("text", "parquet", "cloudwatch"), default="text")
    args = parser.parse_args(argv)
    cfg = load_config(args)
    paths = cfg.paths
    for flag, name in (
        (args.ownership, "ownership"),
        (args.output, "enriched"),
        (args.quarantine, "quarantine"),
    ):
        if flag:
            paths = replace(paths, **{name: flag})
    source = replace(cfg.source, log_format=args.log_format or cfg.source.log_format)
    cfg = replace(cfg, paths=paths, source=source)
    console.configure(args.metrics_json)
    run_backfill(build_session(cfg.spark), cfg, args.input, args.input_kind)
    return 0


main = main_stream

if __name__ == "__main__":
    sys.exit(main_stream(sys.argv[1:]))
