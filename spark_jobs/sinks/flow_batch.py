"""The enrichment job's ``foreachBatch``: one micro-batch -> quarantine, enriched, pending
(Delta) and Kafka, each exactly once.

Order inside a batch: (1) pin a plan (ownership/pending versions, freshness, clock) so a
replay recomputes the same rows; (2) quarantine, (3) enriched, (4) Kafka, (5) pending - every
Delta write carries ``txnAppId``/``txnVersion`` and the Kafka publication is transactional and
marker-checked, so a batch re-run after a crash at any point writes nothing twice.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from spark_jobs.schemas import PARSED_FLOW_SCHEMA, QUARANTINE_SCHEMA
from spark_jobs.sinks import delta
from spark_jobs.sinks.kafka import publish_batch
from spark_jobs.sources.ownership import read_freshness
from spark_jobs.transforms.enrich import with_attribution, with_expired_pending
from spark_jobs.transforms.output import to_enriched_rows, to_kafka_messages

log = logging.getLogger("dredge.batch")

# batch_df -> (parsed rows with quarantine_reason, record-level quarantine, control rows)
Stage = Callable[[DataFrame], tuple[DataFrame, DataFrame, DataFrame]]


@dataclass(frozen=True)
class BatchTargets:
    """Where one batch goes; plain values (config stops at jobs/)."""

    enriched: str
    quarantine: str
    pending: str
    ownership: str
    cidr_labels: str
    plans: str
    app_id: str
    max_pending_minutes: int
    kafka_bootstrap: str | None = None
    kafka_topic: str | None = None
    kafka_tasks: int = 2
    kafka_options: dict[str, str] = field(default_factory=dict)


@dataclass
class FlowBatchWriter:
    """Callable for ``foreachBatch``; logs one JSON metrics line per batch."""

    stage: Stage
    targets: BatchTargets
    metrics: list[dict[str, object]] = field(default_factory=list)

    def _plan(self, spark: SparkSession, batch_id: int) -> delta.BatchPlan:
        t = self.targets

        def make(bid: int) -> delta.BatchPlan:
            fresh = read_freshness(spark, t.ownership)  # before the version: conservative
            return delta.BatchPlan(
                batch_id=bid,
                ownership_version=delta.table_version(spark, t.ownership),
                pending_version=delta.table_version(spark, t.pending),
                freshness=fresh.isoformat() if fresh else None,
                now=datetime.now(UTC).isoformat(),
            )

        return delta.load_or_create_plan(t.plans, batch_id, make)

    def __call__(self, batch_df: DataFrame, batch_id: int) -> None:
        started = time.monotonic()
        spark = batch_df.sparkSession
        t = self.targets
        delta.ensure_table(spark, t.pending, PARSED_FLOW_SCHEMA)
        plan = self._plan(spark, batch_id)
        source = batch_df.persist()
        parsed, bad_records, control = self.stage(source)
        parsed = parsed.persist()
        from spark_jobs.transforms.parse import filter_valid_flows, to_quarantine_rows

        quarantine = bad_records.unionByName(to_quarantine_rows(parsed))
        delta.write_batch(
            quarantine.select(*QUARANTINE_SCHEMA.names),
            t.quarantine,
            app_id=t.app_id,
            batch_id=batch_id,
        )
        owners = delta.read_version(spark, t.ownership, plan.ownership_version)
        if "last_seen" not in owners.columns:
            owners = owners.withColumn("last_seen", F.lit(None).cast("timestamp"))
        labels = spark.read.format("delta").load(t.cidr_labels)
        lengths = [r.prefix_len for r in labels.select("prefix_len").distinct().collect()]
        held = delta.read_version(spark, t.pending, plan.pending_version)
        flows = filter_valid_flows(parsed).unionByName(held.select(*PARSED_FLOW_SCHEMA.names))
        enriched = with_attribution(
            flows,
            owners,
            labels,
            freshness=plan.freshness_time,
            prefix_lengths=lengths,
            broadcast_owners=False,
        ).transform(lambda df: with_expired_pending(df, plan.now_time, t.max_pending_minutes))
        enriched = enriched.persist()
        final = to_enriched_rows(enriched.where(~F.col("is_pending")))
        delta.write_batch(
            final,
            t.enriched,
            app_id=t.app_id,
            batch_id=batch_id,
            partition_by=("event_date", "event_hour"),
        )
        published = skipped = 0
        if t.kafka_bootstrap and t.kafka_topic:
            published, skipped = publish_batch(
                to_kafka_messages(final),
                batch_id,
                bootstrap=t.kafka_bootstrap,
                topic=t.kafka_topic,
                app_id=t.app_id,
                tasks=t.kafka_tasks,
                options=t.kafka_options,
            )
        still = enriched.where(F.col("is_pending")).select(*PARSED_FLOW_SCHEMA.names)
        delta.write_batch(
            still, t.pending, app_id=f"{t.app_id}-pending", batch_id=batch_id, mode="overwrite"
        )
        self._report(
            batch_id, started, source, parsed, quarantine, control, enriched, published, skipped
        )
        for df in (enriched, parsed, source):
            df.unpersist()

    def _report(
        self,
        batch_id: int,
        started: float,
        source: DataFrame,
        parsed: DataFrame,
        quarantine: DataFrame,
        control: DataFrame,
        enriched: DataFrame,
        published: int,
        skipped: int,
    ) -> None:
        counts = enriched.agg(
            F.count(F.lit(1)).alias("flows"),
            F.sum(F.col("is_pending").cast("int")).alias("pending"),
            F.sum(
                (
                    (F.col("src_attribution_status") == "attributed")
                    & (F.col("dst_attribution_status") == "attributed")
                ).cast("int")
            ).alias("both_attributed"),
        ).first()
        n_in = source.count()
        flows = int(counts["flows"] or 0) if counts else 0
        pending = int(counts["pending"] or 0) if counts else 0
        both = int(counts["both_attributed"] or 0) if counts else 0
        final = flows - pending
        metrics: dict[str, object] = {
            "batch_id": batch_id,
            "records_in": n_in,
            "lines_parsed": parsed.count(),
            "quarantined": quarantine.count(),
            "control_messages": control.count(),
            "flows_final": final,
            "flows_pending": pending,
            "pct_both_attributed": round(100.0 * both / final, 2) if final else None,
            "kafka_published": published,
            "kafka_tasks_skipped": skipped,
            "duration_s": round(time.monotonic() - started, 3),
        }
        metrics["rows_per_s"] = round(n_in / max(float(metrics["duration_s"]), 1e-6), 1)  # type: ignore[arg-type]
        self.metrics.append(metrics)
        log.info(json.dumps(metrics))
        print(json.dumps({"dredge_batch": metrics}), flush=True)
