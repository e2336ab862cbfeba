"""Accuracy against a ground truth (the simulator's): correct / misattributed / unattributed
per flow side, for Dredge and for a naive baseline that joins on the *current* owner."""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from spark_jobs.transforms.enrich import SIDES
from spark_jobs.transforms.ip import to_ip_key

CORRECT = "correct"
MISATTRIBUTED = "misattributed"
UNATTRIBUTED = "unattributed"
# the identity of a flow line in the simulator's truth
TRUTH_KEYS = ("interface_id", "srcaddr", "dstaddr", "srcport", "dstport", "protocol", "start")


def _outcome(predicted_app: Column, is_attributed: Column, true_app: Column) -> Column:
    """A side with a true owner app is correct only with that app; a side without one (AWS
    service, internet) is correct when nothing claimed it."""
    return (
        F.when(is_attributed & predicted_app.eqNullSafe(true_app), F.lit(CORRECT))
        .when(is_attributed, F.lit(MISATTRIBUTED))
        .when(true_app.isNull(), F.lit(CORRECT))
        .otherwise(F.lit(UNATTRIBUTED))
    )


def with_truth(enriched_df: DataFrame, truth_df: DataFrame) -> DataFrame:
    """Join final enriched flows with the truth on the flow line's identity.

    Needs (enriched): ``interface_id, srcaddr, dstaddr, srcport, dstport, protocol,
    start_time`` and ``{side}_app``/``{side}_attribution_status``. Needs (truth): the
    :data:`TRUTH_KEYS`, ``src_app``/``dst_app`` and ``flow_direction`` (every record's,
    whatever its format). Adds ``true_src_app``, ``true_dst_app``, ``true_direction``.
    """
    truth = truth_df.where(F.col("malformed_reason").isNull()).select(
        *TRUTH_KEYS,
        F.col("src_app").alias("true_src_app"),
        F.col("dst_app").alias("true_dst_app"),
        F.col("flow_direction").alias("true_direction"),
    )
    flows = enriched_df.withColumn("start", F.unix_seconds("start_time"))
    return flows.join(truth, on=list(TRUTH_KEYS), how="inner")


def with_dredge_outcomes(truthed_df: DataFrame) -> DataFrame:
    """Adds ``src_outcome``/``dst_outcome`` for Dredge's own attribution."""
    return truthed_df.withColumns(
        {
            f"{side}_outcome": _outcome(
                F.col(f"{side}_app"),
                F.col(f"{side}_attribution_status") == "attributed",
                F.col(f"true_{side}_app"),
            )
            for side in SIDES
        }
    )


def with_naive_outcomes(truthed_df: DataFrame, current_owners_df: DataFrame) -> DataFrame:
    """Adds ``naive_src_outcome``/``naive_dst_outcome``: the baseline that looks each address
    up in the *current* ownership (open intervals), ignoring the flow's time.

    Needs ``srcaddr``/``dstaddr``; ``current_owners_df`` needs ``ip_key``, ``app``.
    """
    out = truthed_df
    for side in SIDES:
        owners = current_owners_df.select(
            F.col("ip_key").alias(f"_naive_{side}_key"), F.col("app").alias(f"_naive_{side}_app")
        )
        key = to_ip_key(F.col(f"{side}addr"))
        out = out.join(owners, F.col(f"_naive_{side}_key") == key, "left")
        out = out.withColumn(
            f"naive_{side}_outcome",
            _outcome(
                F.col(f"_naive_{side}_app"),
                F.col(f"_naive_{side}_key").isNotNull(),
                F.col(f"true_{side}_app"),
            ),
        ).drop(f"_naive_{side}_key", f"_naive_{side}_app")
    return out


def outcome_counts(outcomes_df: DataFrame) -> DataFrame:
    """One row per (method, outcome) with the number of flow sides."""
    stacked = [
        outcomes_df.select(F.lit(method).alias("method"), F.col(col).alias("outcome"))
        for method, cols in (
            ("dredge", ("src_outcome", "dst_outcome")),
            ("naive_current_owner", ("naive_src_outcome", "naive_dst_outcome")),
        )
        for col in cols
    ]
    union = stacked[0]
    for part in stacked[1:]:
        union = union.unionByName(part)
    return union.groupBy("method", "outcome").agg(F.count(F.lit(1)).alias("sides"))


def dredge_sides(outcomes_df: DataFrame) -> DataFrame:
    """One row per flow side judged by :func:`with_dredge_outcomes`: ``outcome``,
    ``attributed_by``, ``label`` and ``capturing`` (the side is the address of the ENI that
    captured the record, by the truth's direction)."""
    parts = [
        outcomes_df.select(
            F.col(f"{side}_outcome").alias("outcome"),
            F.col(f"{side}_attributed_by").alias("attributed_by"),
            F.col(f"{side}_label").alias("label"),
            (F.col("true_direction") == ("egress" if side == "src" else "ingress")).alias(
                "capturing"
            ),
        )
        for side in SIDES
    ]
    return parts[0].unionByName(parts[1])


def basis_counts(sides_df: DataFrame) -> DataFrame:
    """Dredge's sides per (``outcome``, ``attributed_by``), from :func:`dredge_sides`."""
    return sides_df.groupBy("outcome", "attributed_by").agg(F.count(F.lit(1)).alias("sides"))


def unattributed_reasons(sides_df: DataFrame) -> DataFrame:
    """Why Dredge left sides with a true owner unattributed: ``reason`` (``conflict``: the
    capturing ENI and the address's owner disagree; ``expired``: pending past the wait, then
    given up; ``capturing``: the capturing ENI's own address; ``peer``: the other side's),
    ``sides``; from :func:`dredge_sides`."""
    reason = (
        F.when(F.col("attributed_by") == "conflict", F.lit("conflict"))
        .when(F.col("label").isNull(), F.lit("expired"))
        .when(F.col("capturing"), F.lit("capturing"))
        .otherwise(F.lit("peer"))
    )
    return (
        sides_df.where(F.col("outcome") == UNATTRIBUTED)
        .groupBy(reason.alias("reason"))
        .agg(F.count(F.lit(1)).alias("sides"))
    )
