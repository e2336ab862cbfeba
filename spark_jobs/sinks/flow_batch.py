"""The enrichment job's ``foreachBatch``: one micro-batch -> quarantine, enriched, Kafka and
pending, each exactly once. A batch reads as plan -> compute -> commit:

1. **plan**: pin what the batch reads (ownership, pending and label versions, the output
   tables' versions, freshness, clock), so a replay recomputes the same rows;
2. **stage**: read and parse the input once (cached) and count it - the batch's one pass
   over its input;
3. **compute**: :func:`~spark_jobs.transforms.batch.batch_outputs`, a pure transform;
4. **commit**: quarantine and enriched (Delta) side by side, then Kafka from the rows the
   enriched commit wrote (one attribution for both sinks), then pending. Every Delta commit
   carries a batch marker that a replay looks for (:func:`~spark_jobs.sinks.delta.
   write_batch`) and the Kafka publication is transactional and marker-checked, so a batch
   re-run after a crash at any point writes nothing twice. The attribution counts come from
   the enriched write itself (an observation), not from a job of their own.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from pyspark.sql import DataFrame, Observation, SparkSession

from spark_jobs import console
from spark_jobs.sinks import delta
from spark_jobs.sinks.batch_counts import stage_counts
from spark_jobs.sinks.batch_parts import Held, PhaseClock, concurrently, latest
from spark_jobs.sinks.dimensions import DimensionCache
from spark_jobs.sinks.kafka import SINGLE_TASK_ROWS, publish_batch
from spark_jobs.sources.ownership import freshness_of, scope_freshness_of
from spark_jobs.transforms.batch import (
    AttributionRules,
    BatchInputs,
    BatchOutputs,
    batch_outputs,
)
from spark_jobs.transforms.enrich import filter_owners_for, ownership_ranges, plan_clock
from spark_jobs.transforms.output import PARTITION_COLUMNS as PARTITIONS
from spark_jobs.transforms.output import to_kafka_messages
from spark_jobs.transforms.parse import filter_valid_flows

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

    @property
    def kafka(self) -> bool:
        return bool(self.kafka_bootstrap and self.kafka_topic)


@dataclass
class FlowBatchWriter:
    """Callable for ``foreachBatch``; reports one metrics line per batch."""

    stage: Stage
    targets: BatchTargets
    metrics: list[dict[str, object]] = field(default_factory=list)
    dimensions: DimensionCache = field(default_factory=DimensionCache)
    _lengths: dict[int, list[int]] = field(default_factory=dict)  # labels version -> lengths
    _owner_rows: dict[int, int] = field(default_factory=dict)  # ownership version -> rows

    def close(self) -> None:
        """Release the cached dimension tables (the query has ended)."""
        self.dimensions.close()

    def __call__(self, batch_df: DataFrame, batch_id: int) -> None:
        started, clock = time.monotonic(), PhaseClock()
        spark = batch_df.sparkSession
        with clock("plan"):
            plan, first = self._plan(spark, batch_id)
        held = Held()
        try:  # a failed batch releases what it cached too (the query may go on: a replay)
            with clock("stage"):
                staged = self.stage(batch_df, held.cache)
                parsed = held.cache(staged.parsed)
                counts = stage_counts(parsed, staged.bad_records, staged.control, staged.records)
            inputs, broadcast = self._inputs(spark, plan, parsed, staged.bad_records, held)
            rules = self._rules(spark, plan, broadcast)
            batch = _Batch(plan, first, counts, inputs, rules, clock)
            counts.update(self._commit(batch))
        finally:
            held.release()
        self._report(batch_id, started, counts, batch.quality, clock.phases)

    # ---- plan --------------------------------------------------------------------------

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
            rows = self._ownership_rows(spark, owned.version)
            pending = delta.existing_table_state(spark, t.pending)  # version + its files
            return delta.BatchPlan(
                batch_id=bid,
                broadcast_owners=rows <= t.broadcast_max_rows,
                ownership_version=owned.version,
                pending_version=pending.version,
                pending_files=pending.files,
                freshness=fresh.isoformat() if fresh else None,
                scope_freshness={k: v.isoformat() for k, v in scopes.items()},
                labels_version=delta.table_version(spark, t.cidr_labels),
                enriched_version=delta.table_version(spark, t.enriched, missing=-1),
                quarantine_version=delta.table_version(spark, t.quarantine, missing=-1),
                now=plan_clock(datetime.now(UTC)).isoformat(),
            )

        plan = delta.load_or_create_plan(t.plans, batch_id, make, spark)
        return plan, bool(made)

    # ---- inputs at the plan's versions -------------------------------------------------

    def _inputs(
        self, spark: SparkSession, plan: delta.BatchPlan, parsed: DataFrame,
        bad_records: DataFrame, held: Held,
    ) -> tuple[BatchInputs, bool]:  # fmt: skip
        """The batch's inputs, and whether its owners are small enough to broadcast."""
        pending = self._held(spark, plan)
        owners, broadcast = self._owners(spark, plan, parsed, pending, held)
        labels = self.dimensions.get(spark, self.targets.cidr_labels, plan.labels_version)
        return BatchInputs(parsed, bad_records, pending, owners, labels), broadcast

    def _owners(
        self, spark: SparkSession, plan: delta.BatchPlan, parsed: DataFrame,
        pending: DataFrame | None, held: Held,
    ) -> tuple[DataFrame, bool]:  # fmt: skip
        """The ownership table at the plan's version, and whether to broadcast it: a small
        one cached across batches while its version holds; a large one cut to the batch's
        addresses (a semi-join), cached for this batch and broadcast when that share is
        small (counting it fills the cache)."""
        t = self.targets
        if plan.broadcast_owners:
            owners = self.dimensions.get(
                spark, t.ownership, plan.ownership_version, prepare=ownership_ranges
            )
            return owners, True
        flows = filter_valid_flows(parsed)
        if pending is not None:
            flows = flows.unionByName(pending)
        owners = delta.read_version(spark, t.ownership, plan.ownership_version)
        cut = held.cache(ownership_ranges(filter_owners_for(flows, owners)))
        return cut, cut.count() <= t.broadcast_max_rows

    def _rules(
        self, spark: SparkSession, plan: delta.BatchPlan, broadcast: bool
    ) -> AttributionRules:
        labels = self.dimensions.get(spark, self.targets.cidr_labels, plan.labels_version)
        lengths = latest(self._lengths, plan.labels_version, lambda: _prefix_lengths(labels))
        return AttributionRules(
            freshness=plan.freshness_time,
            scope_freshness=plan.scope_freshness_times,
            prefix_lengths=lengths,
            broadcast_owners=broadcast,
            now=plan.now_time,
            max_pending_minutes=self.targets.max_pending_minutes,
        )

    def _ownership_rows(self, spark: SparkSession, version: int) -> int:
        """Rows of the ownership table at ``version``, counted once per version: a version
        never changes."""
        path = self.targets.ownership
        return latest(
            self._owner_rows, version, lambda: delta.read_version(spark, path, version).count()
        )

    def _held(self, spark: SparkSession, plan: delta.BatchPlan) -> DataFrame | None:
        """The pending table at the plan's version; None when that version holds no data
        file (its checksum says so), so a batch with nothing pending reads no pending table
        and replays none of its log."""
        if plan.pending_files == 0:
            return None
        return delta.read_version(spark, self.targets.pending, plan.pending_version)

    # ---- commit ------------------------------------------------------------------------

    def _commit(self, batch: _Batch) -> dict[str, int]:
        """Quarantine and enriched side by side, then Kafka from the rows the enriched commit
        wrote (a batch without final flows commits none and publishes nothing), then
        pending; returns the counts the writes reported."""
        t, plan, clock, out = self.targets, batch.plan, batch.clock, batch.outputs

        def quarantine() -> None:
            if batch.counts["quarantined"]:
                with clock("quarantine"):
                    delta.write_batch(
                        out.quarantine, t.quarantine, app_id=t.app_id, batch_id=plan.batch_id,
                        since=plan.quarantine_version, first_attempt=batch.first,
                    )  # fmt: skip

        def enriched() -> bool:  # False: a replay found its marker
            with clock("delta"):
                return delta.write_batch(
                    out.enriched, t.enriched, app_id=t.app_id, batch_id=plan.batch_id,
                    partition_by=PARTITIONS, since=plan.enriched_version,
                    first_attempt=batch.first,
                )  # fmt: skip

        with clock("sinks"):
            written = concurrently(enriched, quarantine)
        tallied = batch.tallied(written)
        published, skipped = 0, 0
        if t.kafka and tallied["flows_final"]:  # no final flow: no enriched commit, no message
            with clock("kafka"):
                published, skipped = publish_batch(
                    self._messages(batch, tallied["flows_final"]), plan.batch_id,
                    bootstrap=t.kafka_bootstrap or "", topic=t.kafka_topic or "",
                    app_id=t.app_id, tasks=t.kafka_tasks, options=t.kafka_options,
                    rows=tallied["flows_final"],
                )  # fmt: skip
        if tallied["flows_pending"] or tallied["held_in"]:
            with clock("pending"):
                delta.write_batch(
                    out.pending, t.pending, app_id=f"{t.app_id}-pending",
                    batch_id=plan.batch_id, mode="overwrite", since=plan.pending_version,
                    first_attempt=batch.first,
                )  # fmt: skip
        if tallied["flows_final"] and t.dq_sample_fraction > 0:
            with clock("quality"):
                batch.quality = self._quality(batch.untallied().enriched)
        return {**tallied, "kafka_published": published, "kafka_tasks_skipped": skipped}

    def _messages(self, batch: _Batch, final: int) -> DataFrame:
        """The batch's Kafka messages, built from the rows its enriched commit wrote (a
        replay finds that commit by its marker): both sinks share one attribution, and a
        replay publishes what the first attempt committed. Where the commit's files cannot
        be listed, from the batch's attribution again (the same rows: the plan pins its
        inputs). ``final``: the batch's final flows, at least its message count."""
        t, plan, enriched = self.targets, batch.plan, batch.outputs.enriched
        rows = delta.written_rows(
            enriched.sparkSession, t.enriched, enriched.drop(*PARTITIONS).schema,
            app_id=t.app_id, batch_id=plan.batch_id, since=plan.enriched_version,
        )  # fmt: skip
        written = rows if rows is not None else batch.untallied().enriched
        if rows is not None and final <= SINGLE_TASK_ROWS:
            # one partition: the rollup needs no shuffle, and one task publishes it
            written = written.coalesce(1)
        return to_kafka_messages(written, plan.batch_id)

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
        self, batch_id: int, started: float, counts: dict[str, int],
        quality: dict[str, object] | None, phases: dict[str, float],
    ) -> None:  # fmt: skip
        duration = round(time.monotonic() - started, 3)
        final, both = counts["flows_final"], counts["both_attributed"]
        metrics: dict[str, object] = {
            "batch_id": batch_id,
            **counts,
            "pct_both_attributed": round(100.0 * both / final, 2) if final else None,
            "duration_s": duration,
            "records_per_s": round(counts["records_in"] / max(duration, 1e-6), 1),
            "phase_s": phases,
        }
        if quality is not None:
            metrics["quality"] = quality
        self.metrics.append(metrics)
        console.emit_batch(metrics, self.targets.app_id)


@dataclass
class _Batch:
    """One batch between its stage and its commit: the plan, the stage's counts, the inputs
    at the plan's versions and the outputs computed from them (observed by ``tally``)."""

    plan: delta.BatchPlan
    first: bool
    counts: dict[str, int]
    inputs: BatchInputs
    rules: AttributionRules
    clock: PhaseClock
    tally: Observation = field(default_factory=Observation)
    outputs: BatchOutputs = field(init=False)
    quality: dict[str, object] | None = None

    def __post_init__(self) -> None:
        self.outputs = batch_outputs(self.inputs, self.rules, self.tally)

    def untallied(self) -> BatchOutputs:
        """The same outputs, unobserved (a further action on them)."""
        return batch_outputs(self.inputs, self.rules)

    def tallied(self, written: bool) -> dict[str, int]:
        """The attribution counts the enriched write observed; for a replay whose enriched
        commit was already there (nothing written, nothing observed) the same outputs are
        run to a ``noop`` sink to count them."""
        tally = self.tally
        if not written:
            tally = Observation()
            enriched = batch_outputs(self.inputs, self.rules, tally).enriched
            enriched.write.format("noop").mode("overwrite").save()
        return {k: int(v or 0) for k, v in tally.get.items()}


def _prefix_lengths(labels_df: DataFrame) -> list[int]:
    return [r.prefix_len for r in labels_df.select("prefix_len").distinct().collect()]
