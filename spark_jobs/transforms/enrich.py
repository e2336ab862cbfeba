"""Time-correct attribution of both ends of every flow.

The rule that keeps Dredge honest - *unattributed is acceptable, misattributed is not*:

* A side is **attributed** only when an ownership interval holds its address at the flow's
  ``start_time`` *and* that owner was confirmed by an observation at or after ``start_time``:
  an open interval is confirmed up to the table's freshness; a closed interval up to its
  ``last_seen`` (the last observation that still saw it). Between ``last_seen`` and
  ``valid_to`` the address changed hands at an unknown moment, so the side is
  **unattributed** there rather than guessed.
* A side whose ``start_time`` is at or after the freshness is **pending**: its owner is not
  known yet. Pending flows are held and re-attributed by later batches; past the maximum wait
  they become unattributed (:func:`with_expired_pending`).
* A side with no owner falls back to CIDR labels, longest prefix first: AWS service ranges,
  VPC/subnet CIDRs, else ``internet``. It stays *unattributed* (no application owns it) but
  gets ``kind``/``label``/``region`` so traffic can still be sliced.

The owner join is an equality join on the address key with the time range as a predicate
(intervals of one address never overlap, so at most one row matches); CIDR matching expands
the batch's distinct addresses into their prefix of every label length, finds the covering
labels by one broadcast equality join on (length, prefix) and keeps the longest; the flows
then meet that small lookup by one equality join per side - no nested loop, no Python UDF.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.window import Window

from spark_jobs.transforms.ip import ip_prefix_key
from spark_jobs.transforms.ownership import scope_key, scope_time_map
from spark_jobs.transforms.timelit import utc_lit

ATTRIBUTED = "attributed"
PENDING = "pending"
UNATTRIBUTED = "unattributed"
SIDES = ("src", "dst")
OWNER_FIELDS = {  # output suffix -> ownership column
    "app": "app",
    "cluster": "cluster",
    "account": "account_id",
    "region": "region",
    "az": "az",
    "vpc": "vpc_id",
    "kind": "kind",
    "resource": "resource_id",
}
LABEL_FIELDS = ("kind", "label", "region", "service")
FAR_FUTURE = "9999-12-31 00:00:00"
ENI_KINDS = ("instance", "container", "task", "load_balancer", "nat_gateway", "interface")
FIVE_TUPLE = ("srcaddr_key", "dstaddr_key", "srcport", "dstport", "protocol")


def side_key(side: str) -> Column:
    """The address key a side is attributed by: the packet address when present (it is the
    real peer behind NAT / secondary IPs), else the interface-level address."""
    return F.coalesce(F.col(f"pkt_{side}addr_key"), F.col(f"{side}addr_key"))


def _owner_struct(owners_df: DataFrame, side: str, scope_fresh: Column) -> DataFrame:
    cols = [F.col(c).alias(c) for c in OWNER_FIELDS.values()]
    return owners_df.select(
        F.col("ip_key").alias(f"_{side}_o_key"),
        F.col("valid_from").alias(f"_{side}_o_from"),
        F.coalesce(F.col("valid_to"), F.lit(FAR_FUTURE).cast("timestamp")).alias(f"_{side}_o_to"),
        F.col("valid_to").isNull().alias(f"_{side}_o_open"),
        F.col("last_seen").alias(f"_{side}_o_seen"),
        scope_fresh.alias(f"_{side}_o_fresh"),
        F.struct(*cols).alias(f"_{side}_owner"),
    )


def _join_owner(
    flows_df: DataFrame, owners_df: DataFrame, side: str, broadcast: bool, scope_fresh: Column
) -> DataFrame:
    right = _owner_struct(owners_df, side, scope_fresh)
    right = F.broadcast(right) if broadcast else right
    cond = (
        (F.col(f"_{side}_o_key") == side_key(side))
        & (F.col(f"_{side}_o_from") <= F.col("start_time"))
        & (F.col("start_time") < F.col(f"_{side}_o_to"))
    )
    return flows_df.join(right, on=cond, how="left")


def filter_owners_for(flows_df: DataFrame, owners_df: DataFrame) -> DataFrame:
    """The ownership rows of the addresses ``flows_df`` attributes (both sides, packet
    addresses when present): a semi-join, so a large ownership table is scanned once and only
    the batch's share of it - usually small enough to broadcast - meets the wide flow rows.
    Attribution against the result equals attribution against ``owners_df``.

    Needs (flows): the ``*addr_key`` columns of :func:`side_key`; (owners): ``ip_key``.
    """
    keys = _batch_keys(flows_df)
    return owners_df.join(keys, owners_df["ip_key"] == keys["_key"], how="left_semi")


def _batch_keys(flows_df: DataFrame) -> DataFrame:
    """The distinct non-null address keys (``_key``) of both sides of ``flows_df``."""
    return (
        flows_df.select(F.explode(F.array(side_key("src"), side_key("dst"))).alias("_key"))
        .where(F.col("_key").isNotNull())
        .distinct()
    )


def _side_status(side: str, freshness: datetime | None) -> Column:
    start = F.col("start_time")
    if freshness is None:
        return F.lit(PENDING)
    fresh = utc_lit(freshness)
    is_open = F.col(f"_{side}_o_open")
    confirmed = is_open | F.col(f"_{side}_o_seen").isNull() | (start <= F.col(f"_{side}_o_seen"))
    # An open interval is only as current as the last observation of *its* scope: a newer
    # observation of another account/region says nothing about it.
    scope_behind = is_open & (start >= F.col(f"_{side}_o_fresh"))
    return (
        F.when(side_key(side).isNull(), F.lit(UNATTRIBUTED))
        .when(start.isNull() | (start >= fresh), F.lit(PENDING))
        .when(F.col(f"_{side}_o_key").isNotNull() & scope_behind, F.lit(PENDING))
        .when(F.col(f"_{side}_o_key").isNotNull() & confirmed, F.lit(ATTRIBUTED))
        .otherwise(F.lit(UNATTRIBUTED))
    )


def address_labels(
    flows_df: DataFrame, labels_df: DataFrame, prefix_lengths: Sequence[int]
) -> DataFrame:
    """The longest-prefix CIDR label of every distinct address the flows attribute that some
    label covers (addresses no label covers are absent: they are ``internet``).

    Each distinct address of the batch (thousands, not the millions of flow sides) is
    expanded into its prefix of every length in ``prefix_lengths``; one broadcast equality
    join on (length, prefix) finds every covering label, and the longest wins.

    Needs (flows): the ``*addr_key`` columns of :func:`side_key`; (labels): ``prefix_len``,
    ``prefix_key`` and :data:`LABEL_FIELDS`. Returns ``_a_key``, ``_a_label`` (a struct).
    """
    lengths = sorted(set(prefix_lengths), reverse=True)
    key = F.col("_key")
    prefixes = F.array(
        *[F.struct(F.lit(b).alias("_len"), ip_prefix_key(key, b).alias("_pk")) for b in lengths]
    )
    right = labels_df.select(
        F.col("prefix_len").alias("_len"),
        F.col("prefix_key").alias("_pk"),
        F.struct(*[F.col(c) for c in LABEL_FIELDS]).alias("_label"),
    )
    if not lengths:
        return right.where(F.lit(False)).select(
            F.col("_pk").alias("_a_key"), F.col("_label").alias("_a_label")
        )
    candidates = _batch_keys(flows_df).select("_key", F.inline(prefixes))
    matched = candidates.join(F.broadcast(right), on=["_len", "_pk"], how="inner")
    return matched.groupBy(F.col("_key").alias("_a_key")).agg(
        F.max_by("_label", "_len").alias("_a_label")
    )


def _join_labels(flows_df: DataFrame, addr_labels_df: DataFrame, side: str) -> DataFrame:
    """One side's ``_<side>_a_label`` from :func:`address_labels` (null: no label covers the
    address, see :func:`_side_label`)."""
    right = addr_labels_df.select(
        F.col("_a_key").alias(f"_{side}_a_key"), F.col("_a_label").alias(f"_{side}_a_label")
    )
    return flows_df.join(
        F.broadcast(right), on=F.col(f"_{side}_a_key") == side_key(side), how="left"
    )


def _side_label(side: str) -> Column:
    """A known address no label covers is ``internet``."""
    label = F.coalesce(F.col(f"_{side}_a_label"), _internet())
    return F.when(side_key(side).isNotNull(), label)


def _internet() -> Column:
    return F.struct(
        F.lit("internet").alias("kind"),
        F.lit("internet").alias("label"),
        F.lit(None).cast("string").alias("region"),
        F.lit(None).cast("string").alias("service"),
    )


def _side_values(side: str, status: Column, shown_status: Column) -> dict[str, Column]:
    """One side's output values by suffix (``attribution_status``, :data:`OWNER_FIELDS`,
    ``label``). ``status`` decides owner vs. label; ``shown_status`` is what the side's
    ``attribution_status`` says (an expired pending side: unattributed, no owner, no label)."""
    owner = F.col(f"_{side}_owner")
    label = _side_label(side)
    owned = status == ATTRIBUTED
    fallback = status == UNATTRIBUTED
    values = {"attribution_status": shown_status}
    for out_name, field in OWNER_FIELDS.items():
        value = F.when(owned, owner[field])
        if out_name in ("kind", "region"):
            value = value.when(fallback, label[out_name])
        values[out_name] = value
    values["label"] = (
        F.when(owned, F.coalesce(owner["app"], F.lit("unknown-app")))
        .when(fallback, label["label"])
    )  # fmt: skip
    return values


def _expired(status: Column, now: datetime, max_wait_minutes: int) -> Column:
    """``status``, with a side pending past ``max_wait_minutes`` (by ``arrival_time``) turned
    unattributed. ``now`` is written into the generated code as a literal: the batch writer
    passes its plan's clock in whole minutes (:func:`plan_clock`), so the code stays the same
    from batch to batch."""
    deadline = utc_lit(now) - F.expr(f"INTERVAL {int(max_wait_minutes)} MINUTES")
    expired = (F.col("arrival_time") < deadline) & (status == PENDING)
    return F.when(expired, F.lit(UNATTRIBUTED)).otherwise(status)


def plan_clock(now: datetime) -> datetime:
    """A batch plan's clock: ``now`` in whole minutes. The clock decides pending expiry and
    becomes a timestamp literal in the attribution's generated code, so a clock that changed
    every micro-batch made Spark compile that code anew every batch (~2 x 40 ms); a side is
    given up at most a minute later than ``max_pending_minutes``. A plan keeps its clock, so a
    replay expires exactly what the first attempt did."""
    return now.replace(second=0, microsecond=0)


def with_attribution(
    flows_df: DataFrame,
    owners_df: DataFrame,
    labels_df: DataFrame,
    *,
    freshness: datetime | None,
    prefix_lengths: Sequence[int],
    broadcast_owners: bool = True,
    scope_freshness: Mapping[str, datetime] | None = None,
    expire: tuple[datetime, int] | None = None,
) -> DataFrame:
    """Attribute both sides of each parsed flow.

    Needs (flows): ``start_time``, ``srcaddr_key``, ``dstaddr_key``, ``pkt_srcaddr_key``,
    ``pkt_dstaddr_key``, ``interface_id`` and ``flow_direction``. Needs (owners): the ownership
    table with ``last_seen``. Needs (labels): the CIDR-label table.

    Adds per side (``src_``/``dst_``): ``attribution_status``, ``app``, ``cluster``,
    ``account``, ``region``, ``az``, ``vpc``, ``kind``, ``resource``, ``label``; and
    ``cross_region``, ``cross_az``, ``is_duplicate_view``, ``is_pending``.

    ``freshness`` is the latest observation applied; ``scope_freshness`` (``"account/region"``
    -> time, see :func:`~spark_jobs.transforms.ownership.scope_key`) the latest per scope: an
    open interval of a scope last observed before the flow is pending, not attributed.
    ``expire`` (``(now, max_wait_minutes)``) applies :func:`with_expired_pending` in the same
    projection.
    """
    scope_fresh = (
        scope_time_map(scope_freshness)[scope_key(F.col("account_id"), F.col("region"))]
        if scope_freshness
        else F.lit(None).cast("timestamp")
    )
    addr_labels = address_labels(flows_df, labels_df, prefix_lengths)
    staged = flows_df
    for side in SIDES:
        staged = _join_owner(staged, owners_df, side, broadcast_owners, scope_fresh)
        staged = _join_labels(staged, addr_labels, side)
    staged = _join_later_views(staged, flows_df)
    # One projection for everything that follows the joins: every DataFrame operation on the
    # ~100-column frame costs a fresh analysis (~0.1 s of a micro-batch).
    values = {}
    for side in SIDES:
        status = _side_status(side, freshness)
        values[side] = _side_values(side, status, _expired(status, *expire) if expire else status)
    flags = _flags(values["src"], values["dst"])
    dup = _duplicate_flag(values["src"], values["dst"], F.col("_later_id").isNotNull())
    return staged.select(
        *[F.col(c) for c in flows_df.columns],
        *[col.alias(f"{side}_{name}") for side in SIDES for name, col in values[side].items()],
        *[col.alias(name) for name, col in flags.items()],
        dup.alias("is_duplicate_view"),
    )


def _flags(src: Mapping[str, Column], dst: Mapping[str, Column]) -> dict[str, Column]:
    """``cross_region``/``cross_az``: only when both sides are known (else null);
    ``is_pending``: either side still pending. ``src``/``dst``: a side's values by suffix."""
    both_owned = (src["attribution_status"] == ATTRIBUTED) & (
        dst["attribution_status"] == ATTRIBUTED
    )
    regions_known = src["region"].isNotNull() & dst["region"].isNotNull()
    return {
        "cross_region": F.when(regions_known, src["region"] != dst["region"]),
        "cross_az": F.when(both_owned, src["az"] != dst["az"]),
        "is_pending": (src["attribution_status"] == PENDING)
        | (dst["attribution_status"] == PENDING),
    }


def _duplicate_flag(
    src: Mapping[str, Column], dst: Mapping[str, Column], by_rank: Column
) -> Column:
    """The second view of a flow logged at both ENIs (see :func:`with_duplicate_view`)."""
    both_enis = (
        src["kind"].isin(*ENI_KINDS)
        & dst["kind"].isin(*ENI_KINDS)
        & (src["attribution_status"] == ATTRIBUTED)
        & (dst["attribution_status"] == ATTRIBUTED)
    )
    by_direction = F.col("flow_direction") == "ingress"
    dup = both_enis & F.when(F.col("flow_direction").isNotNull(), by_direction).otherwise(by_rank)
    return F.coalesce(dup, F.lit(False))


def _columns_of(side: str) -> dict[str, Column]:
    return {n: F.col(f"{side}_{n}") for n in ("attribution_status", "region", "az", "kind")}


def with_cross_flags(df: DataFrame) -> DataFrame:
    """``cross_region``/``cross_az``: only when both sides are known (else null);
    ``is_pending``: either side still pending."""
    return df.withColumns(_flags(_columns_of("src"), _columns_of("dst")))


def with_duplicate_view(df: DataFrame, views_df: DataFrame | None = None) -> DataFrame:
    """Flag the second view of a flow logged at both ENIs (``is_duplicate_view``).

    A flow between two monitored ENIs is logged twice: egress at the source ENI and ingress
    at the destination ENI, same 5-tuple and window. When the format carries
    ``flow-direction`` (v5+), the ingress record of a flow whose both ends are owned by
    ENI-backed resources is the duplicate. Without it (v2), the records without a direction
    that share one 5-tuple and start time *within the micro-batch* are ranked by
    ``interface_id`` and all but the first are flagged; the two views of a flow delivered in
    different batches are then both kept (documented limitation; use a v5 format to remove
    it). Needs the 5-tuple, ``start_time``, ``interface_id``, ``flow_direction``, ``flow_id``
    and the side kinds/statuses.

    The ranking runs on a narrow projection (``views_df``, default ``df``: any frame with the
    same rows' 5-tuple, ``start_time``, ``interface_id``, ``flow_direction`` and ``flow_id``,
    e.g. the flows before attribution) and only the later views' ``flow_id`` s are broadcast
    back, so the wide rows are never shuffled.
    """
    joined = _join_later_views(df, df if views_df is None else views_df)
    dup = _duplicate_flag(_columns_of("src"), _columns_of("dst"), F.col("_later_id").isNotNull())
    flag = dup.alias("is_duplicate_view")
    return joined.select(*[F.col(c) for c in df.columns if c != "is_duplicate_view"], flag)


def _join_later_views(df: DataFrame, views_df: DataFrame) -> DataFrame:
    """``df`` with ``_later_id`` (non-null on the rows :func:`_later_views` of ``views_df``
    ranks as a later view), by a broadcast of those ids only."""
    later = F.broadcast(_later_views(views_df))
    return df.join(later, on=F.col("flow_id") == F.col("_later_id"), how="left")


def _later_views(views_df: DataFrame) -> DataFrame:
    """``_later_id``: the ``flow_id`` of every direction-less record that is not the first
    (by ``interface_id``, ``flow_id``) of its 5-tuple and start time."""
    views = Window.partitionBy(*FIVE_TUPLE, "start_time").orderBy("interface_id", "flow_id")
    narrow = views_df.where(F.col("flow_direction").isNull()).select(
        "flow_id", *FIVE_TUPLE, "start_time", "interface_id"
    )
    ranked = narrow.withColumn("_rank", F.row_number().over(views))
    return ranked.where(F.col("_rank") > 1).select(F.col("flow_id").alias("_later_id")).distinct()


def with_expired_pending(df: DataFrame, now: datetime, max_wait_minutes: int) -> DataFrame:
    """Turn sides that have been pending longer than ``max_wait_minutes`` (by
    ``arrival_time``) into unattributed, keeping their CIDR fallback empty: after the wait the
    owner is given up on, never guessed. Needs the columns :func:`with_attribution` adds."""
    updates = {
        f"{side}_attribution_status": _expired(
            F.col(f"{side}_attribution_status"), now, max_wait_minutes
        )
        for side in SIDES
    }
    return df.withColumns(updates).transform(with_cross_flags)
