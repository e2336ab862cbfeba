"""Pure transforms that derive the columns the data-quality suites check.

Checks that are not a plain per-column rule (an address that did not parse, the share of
attributed sides, ``cross_region`` against the two regions, overlapping ownership intervals,
a disagreement with ground truth) are
computed here as ordinary columns, so the Great Expectations wiring stays a list of simple
expectations on them and the logic is unit-testable without GX. No actions, no I/O.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from spark_jobs.schemas import ADDRESS_COLUMNS
from spark_jobs.transforms.enrich import ATTRIBUTED, SIDES
from spark_jobs.transforms.ip import to_canonical_ip, to_ip_key

IP_KEY_PATTERN = "^[0-9a-f]{32}$"
FAR_FUTURE = "9999-12-31 00:00:00"
# Columns a ground-truth row is matched on (the interface-level view of one flow line).
TRUTH_KEYS: tuple[str, ...] = (
    "interface_id",
    "start_time",
    "srcport",
    "dstport",
    "protocol",
    "srcaddr",
    "dstaddr",
)


def _bad_address(column: str, has_keys: bool) -> Column:
    key = F.col(f"{column}_key") if has_keys else to_ip_key(F.col(column))
    bad = (F.col(column).isNotNull() & key.isNull()) | (
        key.isNotNull() & ~key.rlike(IP_KEY_PATTERN)
    )
    return F.when(bad, F.lit(column))


def with_address_checks(flows_df: DataFrame) -> DataFrame:
    """Add ``bad_address``: the names of the address columns whose text is set but whose key is
    missing or not 32 hex digits (comma-separated), null when every address is valid.

    Needs: each address column in ``ADDRESS_COLUMNS``; their ``*_key`` columns where the
    frame has them (parsed rows), else the key is computed from the text (enriched rows).
    """
    has_keys = all(f"{c}_key" in flows_df.columns for c in ADDRESS_COLUMNS)
    names = [_bad_address(c, has_keys) for c in ADDRESS_COLUMNS]
    joined = F.concat_ws(",", *names)
    return flows_df.withColumn("bad_address", F.when(joined != "", joined))


def with_attributed_share(enriched_df: DataFrame) -> DataFrame:
    """Add ``attributed_side_share`` (double): the fraction of a flow's two sides that are
    attributed (0, 0.5 or 1); null for rows that carry no traffic (NODATA/SKIPDATA), so the
    column's mean is the share of attributed sides among traffic rows.

    Needs: ``is_traffic``, ``src_attribution_status``, ``dst_attribution_status``.
    """
    owned = [
        F.when(F.col(f"{side}_attribution_status") == ATTRIBUTED, 1.0).otherwise(0.0)
        for side in SIDES
    ]
    share = (owned[0] + owned[1]) / F.lit(2.0)
    return enriched_df.withColumn(
        "attributed_side_share", F.when(F.coalesce(F.col("is_traffic"), F.lit(True)), share)
    )


def with_cross_region_check(enriched_df: DataFrame) -> DataFrame:
    """Add ``cross_region_mismatch``: ``"<src_region>-><dst_region> cross_region=<value>"``
    when ``cross_region`` disagrees with the regions, else null. ``cross_region`` must be set
    exactly when both regions are known, and then say whether they differ.

    A column, not GX's query expectation: that one registers a temp view on the DataFrame's
    session but queries GX's own (default) session, so inside ``foreachBatch`` (a cloned
    session) it could never find the view and always failed.

    Needs: ``src_region``, ``dst_region``, ``cross_region``.
    """
    src, dst, flag = F.col("src_region"), F.col("dst_region"), F.col("cross_region")
    known = src.isNotNull() & dst.isNotNull()
    bad = F.when(known, ~flag.eqNullSafe(src != dst)).otherwise(flag.isNotNull())
    text = F.format_string(
        "%s->%s cross_region=%s",
        *(F.coalesce(c.cast("string"), F.lit("null")) for c in (src, dst, flag)),
    )
    return enriched_df.withColumn("cross_region_mismatch", F.when(bad, text))


def with_overlap_flags(ownership_df: DataFrame) -> DataFrame:
    """Add ``overlapping_ip``: the row's ``ip`` when its interval overlaps an earlier-starting
    interval of the same ``ip_key``, else null.

    Intervals are half-open ``[valid_from, valid_to)`` (null ``valid_to`` = open). A running
    maximum of the earlier intervals' ends finds every overlap in one sorted pass per address;
    it replaces the quadratic self-join and flags the later interval of each overlapping pair.

    Needs: ``ip``, ``ip_key``, ``valid_from``, ``valid_to``.
    """
    end = F.coalesce(F.col("valid_to"), F.lit(FAR_FUTURE).cast("timestamp"))
    earlier = (
        Window.partitionBy("ip_key")
        .orderBy("valid_from", "valid_to")
        .rowsBetween(Window.unboundedPreceding, -1)
    )
    prev_end = F.max(end).over(earlier)
    return ownership_df.withColumn(
        "overlapping_ip", F.when(prev_end > F.col("valid_from"), F.col("ip"))
    )


def to_truth_sides(truth_df: DataFrame) -> DataFrame:
    """The simulator's flow ground truth -> one row per well-formed line with the
    :data:`TRUTH_KEYS` and the true ``truth_src_app`` / ``truth_dst_app``.

    Needs: ``malformed_reason``, ``interface_id``, ``start`` (epoch seconds), ``srcport``,
    ``dstport``, ``protocol``, ``srcaddr``, ``dstaddr``, ``src_app``, ``dst_app``.
    """
    return (
        truth_df.where(F.col("malformed_reason").isNull())
        .select(
            F.col("interface_id"),
            F.timestamp_seconds(F.col("start")).alias("start_time"),
            F.col("srcport").cast("int").alias("srcport"),
            F.col("dstport").cast("int").alias("dstport"),
            F.col("protocol").cast("int").alias("protocol"),
            to_canonical_ip(to_ip_key(F.col("srcaddr"))).alias("srcaddr"),
            to_canonical_ip(to_ip_key(F.col("dstaddr"))).alias("dstaddr"),
            F.col("src_app").alias("truth_src_app"),
            F.col("dst_app").alias("truth_dst_app"),
        )
        .dropDuplicates(list(TRUTH_KEYS))
    )


def with_truth_mismatch(enriched_df: DataFrame, truth_sides_df: DataFrame) -> DataFrame:
    """Add ``misattribution``: ``"src:<ours>!=<truth>"`` (and/or ``dst:...``) when a side is
    attributed to an app other than the ground truth's; null when correct, unattributed (which
    is acceptable) or when no truth row matches.

    Needs (enriched): :data:`TRUTH_KEYS`, ``{src,dst}_attribution_status``, ``{src,dst}_app``.
    Needs (truth): the output of :func:`to_truth_sides`.
    """
    cond = [F.col(f"e.{k}").eqNullSafe(F.col(f"t.{k}")) for k in TRUTH_KEYS]
    joined = enriched_df.alias("e").join(truth_sides_df.alias("t"), on=_all(cond), how="left")
    has_truth = F.col("t.interface_id").isNotNull()

    def wrong(side: str) -> Column:
        ours, truth = F.col(f"e.{side}_app"), F.col(f"t.truth_{side}_app")
        bad = has_truth & (F.col(f"e.{side}_attribution_status") == ATTRIBUTED)
        bad = bad & ~ours.eqNullSafe(truth)
        text = F.concat(
            F.lit(f"{side}:"), F.coalesce(ours, F.lit("null")), F.lit("!="),
            F.coalesce(truth, F.lit("null")),
        )  # fmt: skip
        return F.when(bad, text)

    joined_text = F.concat_ws(" ", *(wrong(side) for side in SIDES))
    return joined.select("e.*", F.when(joined_text != "", joined_text).alias("misattribution"))


def _all(conds: list[Column]) -> Column:
    out = conds[0]
    for cond in conds[1:]:
        out = out & cond
    return out
