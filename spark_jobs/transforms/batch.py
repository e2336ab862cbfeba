"""One micro-batch's outputs from its inputs at the versions its plan pinned: pure, no I/O.

The batch writer reads the inputs (this batch's parsed lines, the held pending flows, the
ownership and CIDR-label tables at the plan's versions), calls :func:`batch_outputs`, and
commits what it returns. Every output reads the one parsed result: nothing here parses twice.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from pyspark.sql import Column, DataFrame, Observation
from pyspark.sql import functions as F

from spark_jobs.schemas import PARSED_FLOW_SCHEMA, QUARANTINE_SCHEMA
from spark_jobs.transforms.enrich import ATTRIBUTED, BY_ENI, CONFLICT, SIDES, with_attribution
from spark_jobs.transforms.output import to_enriched_rows
from spark_jobs.transforms.parse import filter_valid_flows, to_quarantine_rows

HELD = "_held"  # a flow brought back from the pending table (not new in this batch)


@dataclass(frozen=True)
class BatchInputs:
    """What a batch reads. ``parsed``: its lines parsed (with ``quarantine_reason``);
    ``bad_records``: its record-level quarantine rows; ``held``: the pending flows at the
    plan's version (None: none); ``owners`` / ``labels``: the ownership and CIDR-label tables
    at the plan's versions."""

    parsed: DataFrame
    bad_records: DataFrame
    held: DataFrame | None
    owners: DataFrame
    labels: DataFrame


@dataclass(frozen=True)
class AttributionRules:
    """The plan's values that decide attribution (see :func:`with_attribution`)."""

    freshness: datetime | None
    scope_freshness: Mapping[str, datetime]
    prefix_lengths: Sequence[int]
    broadcast_owners: bool
    now: datetime
    max_pending_minutes: int


@dataclass(frozen=True)
class BatchOutputs:
    """What a batch writes: quarantine rows, final enriched rows and the flows still pending
    (the pending table's next content). The Kafka messages are built from the enriched rows
    (:func:`~spark_jobs.transforms.output.to_kafka_messages`) as the batch writer reads them
    back from their Delta commit."""

    quarantine: DataFrame
    enriched: DataFrame
    pending: DataFrame


def _tally() -> list[Column]:
    """The counts the enriched write reports (an observation of all attributed flows):
    final and pending flows, final flows with both sides attributed, final flow sides
    attributed through an ENI and left unattributed by a conflict, held flows read back."""
    both = (F.col("src_attribution_status") == ATTRIBUTED) & (
        F.col("dst_attribution_status") == ATTRIBUTED
    )
    pending = F.col("is_pending")

    def sides(by: str) -> Column:
        src, dst = (
            F.count(F.when(~pending & (F.col(f"{s}_attributed_by") == by), 1)) for s in SIDES
        )
        return src + dst

    return [
        F.count(F.when(~pending, 1)).alias("flows_final"),
        F.count(F.when(pending, 1)).alias("flows_pending"),
        F.count(F.when(~pending & both, 1)).alias("both_attributed"),
        sides(BY_ENI).alias("sides_by_eni"),
        sides(CONFLICT).alias("sides_conflict"),
        F.count(F.when(F.col(HELD), 1)).alias("held_in"),
    ]


def batch_outputs(
    inputs: BatchInputs, rules: AttributionRules, tally: Observation | None = None
) -> BatchOutputs:
    """A batch's outputs. ``tally``, when given, observes ``flows_final``, ``flows_pending``,
    ``both_attributed``, ``sides_by_eni``, ``sides_conflict`` and ``held_in`` while
    ``enriched`` is written (no job of its own).

    The flows are this batch's valid lines plus the held ones, attributed once per output
    that reads them; the address-label lookup and the ownership semi-join read the same
    parsed rows.
    """
    flows = filter_valid_flows(inputs.parsed).withColumn(HELD, F.lit(False))
    if inputs.held is not None:
        held = inputs.held.select(*PARSED_FLOW_SCHEMA.names, F.lit(True).alias(HELD))
        flows = flows.unionByName(held)
    attributed = with_attribution(
        flows,
        inputs.owners,
        inputs.labels,
        freshness=rules.freshness,
        prefix_lengths=rules.prefix_lengths,
        broadcast_owners=rules.broadcast_owners,
        scope_freshness=rules.scope_freshness,
        expire=(rules.now, rules.max_pending_minutes),
    )
    observed = attributed if tally is None else attributed.observe(tally, *_tally())
    final = to_enriched_rows(observed.where(~F.col("is_pending")))
    quarantine = inputs.bad_records.unionByName(to_quarantine_rows(inputs.parsed))
    return BatchOutputs(
        quarantine=quarantine.select(*QUARANTINE_SCHEMA.names),
        enriched=final,
        pending=attributed.where(F.col("is_pending")).select(*PARSED_FLOW_SCHEMA.names),
    )
