"""The enrichment job's ``foreachBatch``: one micro-batch -> quarantine, enriched, pending
(Delta) and Kafka, each exactly once.

Order inside a batch: (1) pin a plan (ownership/pending/label versions, the output tables'
versions, freshness, clock) so a replay recomputes the same rows; (2) quarantine, (3)
enriched and (4) Kafka side by side (two threads, so Spark runs their jobs together), (5)
pending - every Delta commit carries a batch marker that a replay looks for
(:func:`~spark_jobs.sinks.delta.write_batch`) and the Kafka publication is transactional and
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
from spark_jobs.sinks.batch_counts import enriched_counts, stage_counts
from spark_jobs.sinks.batch_parts import AdaptiveSwitch, Held, PhaseClock, concurrently, latest
from spark_jobs.sinks.dimensions import DimensionCache
from spark_jobs.sinks.kafka import publish_batch
from spark_jobs.sources.ownership import (
    freshness_of,
    scope_freshness_of,
)
from spark_jobs.transforms.enrich import (
    filter_owners_for,
    plan_clock,
    with_attribution,
)
from spark_jobs.transforms.output import to_enriched_rows, to_kafka_messages
from spark_jobs.transforms.parse import filter_valid_flows, to_quarantine_rows

log = logging.getLogger("dredge.batch")


@dataclass(frozen=True)
class StageResult:
    """What the input stage made of a batch: parsed lines (with ``quarantine_reason``),
    record-level quarantine rows, control-message rows and one row per input record (only
    counted). What the stage caches goes through the ``cache`` it is given (the writer's
    :class:`~spark_jobs.sinks.batch_parts.Held`, released at the end of the batch)."""

    parsed: DataFrame
    bad_records: DataFrame
    control: DataFrame
    records: DataFrame


Cache = Callable[[DataFrame], DataFrame]
# (batch input, cache) -> StageResult; ``cache`` is ``persist`` in the batch writer
Stage = Callable[[DataFrame, Cache], StageResult]


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
    dq_sample_fraction: float = 0.0
    dq_min_attributed_share: float = 0.5
    broadcast_max_rows: int = 500_000
    local_checkpoint: bool = False  # parsed lines: a lineage-free checkpoint, else a cache
    small_batch_lines: int = 0  # batches of at most this many lines run without AQE (0: never)


@dataclass
class FlowBatchWriter:
    """Callable for ``foreachBatch``; logs one JSON metrics line per batch."""

    stage: Stage
    targets: BatchTargets
    metrics: list[dict[str, object]] = field(default_factory=list)
    dimensions: DimensionCache = field(default_factory=DimensionCache)
    _lengths: dict[int, list[int]] = field(default_factory=dict)  # labels version -> lengths
    _owner_rows: dict[int, int] = field(default_factory=dict)  # ownership version -> rows
    _empty_pending: int | None = None  # the latest pending version seen empty
    _last_lines: int | None = None  # lines of the previous batch (sizes the next one's stage)

    def close(self) -> None:
        """Release the cached dimension tables (the query has ended)."""
        self.dimensions.close()

    def _plan(self, spark: SparkSession, batch_id: int) -> tuple[delta.BatchPlan, bool]:
        """The batch's plan, and whether it was made just now (a first attempt: nothing of
        this batch can be in any output yet) rather than read back (a replay)."""
        t = self.targets
        made: list[int] = []

        def make(bid: int) -> delta.BatchPlan:
            made.append(bid)
            owned = delta.table_state(spark, t.ownership)  # version and its properties
            if owned is None:
                raise FileNotFoundError(f"no ownership table at {t.ownership}")
            fresh = freshness_of(owned.properties)  # the freshness of exactly this version
            scopes = scope_freshness_of(owned.properties)
            version = owned.version
            rows = self._ownership_rows(spark, version)
            return delta.BatchPlan(
                batch_id=bid,
                broadcast_owners=rows <= t.broadcast_max_rows,
                ownership_version=version,
                pending_version=delta.table_version(spark, t.pending),
                freshness=fresh.isoformat() if fresh else None,
                scope_freshness={k: v.isoformat() for k, v in scopes.items()},
                labels_version=delta.table_version(spark, t.cidr_labels),
                enriched_version=delta.table_version(spark, t.enriched, missing=-1),
                quarantine_version=delta.table_version(spark, t.quarantine, missing=-1),
                now=plan_clock(datetime.now(UTC)).isoformat(),
            )

        plan = delta.load_or_create_plan(t.plans, batch_id, make, spark)
        return plan, bool(made)

    def __call__(self, batch_df: DataFrame, batch_id: int) -> None:
        started = time.monotonic()
        clock = PhaseClock()
        with clock("plan"):
            plan, first = self._plan(batch_df.sparkSession, batch_id)
        held = Held(self.targets.local_checkpoint)
        switch = AdaptiveSwitch(batch_df.sparkSession, self.targets.small_batch_lines)
        switch.size(self._last_lines)  # until this batch's own size is known
        try:  # a failed batch releases what it cached too (the query may go on: a replay)
            counts, published, skipped, quality = self._write(
                batch_df, plan, first, clock, held, switch
            )
        finally:
            try:
                held.release()
            finally:
                switch.restore()
        extra: dict[str, object] = {} if switch.adaptive is None else {"adaptive": switch.adaptive}
        self._report(batch_id, started, counts, published, skipped, quality, clock.phases, extra)

    def _write(
        self, batch_df: DataFrame, plan: delta.BatchPlan, first: bool, clock: PhaseClock,
        held: Held, switch: AdaptiveSwitch,
    ) -> tuple[dict[str, int], int, int, dict[str, object] | None]:  # fmt: skip
        """The batch's outputs; returns (counts, Kafka messages published, Kafka tasks that
        skipped, quality)."""
        spark, t, batch_id = batch_df.sparkSession, self.targets, plan.batch_id
        with clock("stage"):
            staged = self.stage(batch_df, held.cache)
            parsed = held.rows_of(staged.parsed)
            counts: dict[str, int] = {}
            built: list[DataFrame] = []

            def count() -> None:  # runs the parse (it fills the cache)
                counts.update(
                    stage_counts(parsed, staged.bad_records, staged.control, staged.records)
                )

            planned_small = switch.small  # the settings the attribution is planned under

            def build() -> None:  # meanwhile the driver builds and plans the attribution
                with clock("build"):
                    # what it caches is held at once: released even if the count fails;
                    # persist plans the attributed rows now (~0.3 s of a small batch)
                    built.append(held.cache(self._attribute(spark, parsed, plan, held.cache)))

            concurrently(count, build)
        self._last_lines = counts["lines_parsed"]
        switch.size(counts["lines_parsed"])  # for everything after the stage
        if counts["quarantined"]:
            with clock("quarantine"):
                quarantine = staged.bad_records.unionByName(to_quarantine_rows(parsed))
                delta.write_batch(
                    quarantine.select(*QUARANTINE_SCHEMA.names), t.quarantine, app_id=t.app_id,
                    batch_id=batch_id, since=plan.quarantine_version, first_attempt=first,
                )  # fmt: skip
        with clock("attribute"):
            enriched = built[0]
            if switch.small != planned_small:  # sized wrong by the previous batch: plan again
                enriched = held.replan(enriched)
            counts.update(enriched_counts(enriched))
            self._note_held(plan.pending_version, counts["held_in"])
        final = to_enriched_rows(enriched.where(~F.col("is_pending")))
        published = skipped = 0

        def to_delta() -> None:
            with clock("delta"):
                delta.write_batch(
                    final, t.enriched, app_id=t.app_id, batch_id=batch_id,
                    partition_by=("event_date", "event_hour"), since=plan.enriched_version,
                    first_attempt=first,
                )  # fmt: skip

        def to_kafka() -> None:
            nonlocal published, skipped
            with clock("kafka"):
                published, skipped = publish_batch(
                    to_kafka_messages(final), batch_id, bootstrap=t.kafka_bootstrap or "",
                    topic=t.kafka_topic or "", app_id=t.app_id, tasks=t.kafka_tasks,
                    options=t.kafka_options, rows=counts["flows_final"],
                )  # fmt: skip

        if counts["flows_final"]:
            with clock("sinks"):
                concurrently(to_delta, *([to_kafka] if t.kafka_bootstrap and t.kafka_topic else []))
        with clock("quality"):
            quality = self._quality(final) if counts["flows_final"] else None
        if counts["flows_pending"] or counts["held_in"]:
            with clock("pending"):
                still = enriched.where(F.col("is_pending")).select(*PARSED_FLOW_SCHEMA.names)
                delta.write_batch(
                    still, t.pending, app_id=f"{t.app_id}-pending", batch_id=batch_id,
                    mode="overwrite", since=plan.pending_since, first_attempt=first,
                )  # fmt: skip
        return counts, published, skipped, quality

    def _attribute(
        self, spark: SparkSession, parsed: DataFrame, plan: delta.BatchPlan, cache: Cache
    ) -> DataFrame:
        """This batch's valid flows plus the held (pending) ones, attributed as of ``plan``
        (what it caches goes through ``cache``). A large ownership table is first cut to the batch's addresses
        (a semi-join), broadcast when that share is small, else joined by shuffle."""
        t = self.targets
        labels, lengths = self._labels(spark, plan.labels_version)
        flows = filter_valid_flows(parsed).withColumn("_held", F.lit(False))
        held = self._held(spark, plan.pending_version)
        if held is not None:
            flows = flows.unionByName(
                held.select(*PARSED_FLOW_SCHEMA.names, F.lit(True).alias("_held"))
            )
        broadcast = plan.broadcast_owners
        if broadcast:  # small: cached across batches while its version holds
            owners = self.dimensions.get(spark, t.ownership, plan.ownership_version, _with_seen)
        else:
            owners = delta.read_version(spark, t.ownership, plan.ownership_version)
            owners = cache(filter_owners_for(flows, _with_seen(owners)))
            broadcast = owners.count() <= t.broadcast_max_rows
        return with_attribution(
            flows,
            owners,
            labels,
            freshness=plan.freshness_time,
            prefix_lengths=lengths,
            broadcast_owners=broadcast,
            scope_freshness=plan.scope_freshness_times,
            expire=(plan.now_time, t.max_pending_minutes),
        )

    def _ownership_rows(self, spark: SparkSession, version: int) -> int:
        """Rows of the ownership table at ``version`` (from Delta's file statistics), counted
        once per version: a version never changes."""
        path = self.targets.ownership
        return latest(
            self._owner_rows, version, lambda: delta.read_version(spark, path, version).count()
        )

    def _held(self, spark: SparkSession, version: int) -> DataFrame | None:
        """The pending table as of ``version``; None when this writer has seen that version
        hold no rows (a Delta version never changes; any write makes a new one), so a stream
        with nothing pending skips the read and its Delta log replay."""
        if version == self._empty_pending:
            return None
        return delta.read_version(spark, self.targets.pending, version)

    def _note_held(self, version: int, held_in: int) -> None:
        """Remember that pending ``version`` was empty (``held_in`` rows came from it)."""
        if held_in == 0:
            self._empty_pending = version

    def _labels(self, spark: SparkSession, version: int | None) -> tuple[DataFrame, list[int]]:
        """The CIDR labels as of ``version`` and their distinct prefix lengths, both kept
        across batches while the version holds; the latest labels (read anew) for a plan
        written before label versions were pinned."""
        path = self.targets.cidr_labels
        if version is None:
            labels = spark.read.format("delta").load(path)
            return labels, _prefix_lengths(labels)
        labels = self.dimensions.get(spark, path, version)
        return labels, latest(self._lengths, version, lambda: _prefix_lengths(labels))

    def _quality(self, final_df: DataFrame) -> dict[str, object] | None:
        """Great Expectations on a sample of the batch's final rows (off when the fraction is
        0); the result goes into the batch metrics and never fails the batch."""
        fraction = self.targets.dq_sample_fraction
        if fraction <= 0:
            return None
        from spark_jobs.quality.runner import validate_sample

        return validate_sample(
            final_df, "enriched", fraction,
            min_attributed_share=self.targets.dq_min_attributed_share,
        )  # fmt: skip

    def _report(
        self,
        batch_id: int,
        started: float,
        counts: dict[str, int],
        published: int,
        skipped: int,
        quality: dict[str, object] | None = None,
        phases: dict[str, float] | None = None,
        extra: dict[str, object] | None = None,
    ) -> None:
        final = counts["flows_final"]
        duration = round(time.monotonic() - started, 3)
        metrics: dict[str, object] = {
            "batch_id": batch_id,
            **counts,
            "pct_both_attributed": round(100.0 * counts["both_attributed"] / final, 2)
            if final
            else None,
            "kafka_published": published,
            "kafka_tasks_skipped": skipped,
            "duration_s": duration,
            "records_per_s": round(counts["records_in"] / max(duration, 1e-6), 1),
        }
        if quality is not None:
            metrics["quality"] = quality
        if phases:
            metrics["phase_s"] = phases
        metrics.update(extra or {})
        self.metrics.append(metrics)
        log.info(json.dumps(metrics))
        print(json.dumps({"dredge_batch": metrics}), flush=True)


def _prefix_lengths(labels_df: DataFrame) -> list[int]:
    return [r.prefix_len for r in labels_df.select("prefix_len").distinct().collect()]


def _with_seen(owners_df: DataFrame) -> DataFrame:
    """Ownership tables written before ``last_seen`` existed read it as null."""
    if "last_seen" in owners_df.columns:
        return owners_df
    return owners_df.withColumn("last_seen", F.lit(None).cast("timestamp"))
