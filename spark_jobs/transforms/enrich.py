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
  they become unattributed (``expire`` of :func:`with_attribution`).
* A side with no owner falls back to CIDR labels, longest prefix first: AWS service ranges,
  VPC/subnet CIDRs, else ``internet``. It stays *unattributed* (no application owns it) but
  gets ``kind``/``label``/``region`` so traffic can still be sliced.

Two facts about ENIs close most of the gap between observations without guessing (an ENI id
is never reused; ``eni_attached_at`` is only given for an ENI's primary address on an ENI that
cannot be moved, see :data:`~spark_jobs.transforms.ownership.ATTACHED_AT`):

* **since the attachment**: such an address was its owner's from the attach time on, not
  only from the first observation that saw it (either side of a flow);
* **the capturing ENI**: a record captured at such an ENI whose own side is that address
  was captured while the ENI existed, so it is its owner's up to the observation that no
  longer saw the ENI, past the last one that did. The ENI's own side is the one
  ``flow-direction`` names (``egress``: source; ``ingress``: destination), or without it the
  side whose owner holds the address on that ENI; a side whose packet address differs from
  its interface address (NAT) is never the ENI's own.

A side attributed through either says so (``attributed_by``: ``eni``, else ``ip``). When
``flow-direction`` names the capturing ENI's side but the address's owner at that time holds
it on another ENI, the two disagree: the side is unattributed, ``attributed_by`` ``conflict``.

The owner join is an equality join on the address key with the time range as a predicate
(intervals of one address never overlap, so at most one row matches); CIDR matching expands
the batch's distinct addresses into their prefix of every label length, finds the covering
labels by one broadcast equality join on (length, prefix) and keeps the longest; the flows
then meet that small lookup by one equality join per side - no nested loop, no Python UDF.
"""

from __future__ import annotations

import functools
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from spark_jobs.transforms.ip import ip_prefix_key
from spark_jobs.transforms.ownership import ATTACHED_AT, LAST_SEEN, scope_key, scope_time_map
from spark_jobs.transforms.timelit import utc_lit

ATTRIBUTED = "attributed"
PENDING = "pending"
UNATTRIBUTED = "unattributed"
SIDES = ("src", "dst")
OWNER_FIELDS = {  # output suffix -> ownership column: a column per side each
    "app": "app",
    "region": "region",
    "az": "az",
    "kind": "kind",
}
DETAIL_FIELDS = {  # field of the side's ``owner`` struct -> ownership column
    "cluster": "cluster",
    "account": "account_id",
    "vpc": "vpc_id",
    "resource": "resource_id",
}
SIDE_SUFFIXES = ("attribution_status", "attributed_by", *OWNER_FIELDS, "label", "owner")
BY_IP = "ip"
BY_ENI = "eni"
CONFLICT = "conflict"
EGRESS = "egress"
INGRESS = "ingress"
LABEL_FIELDS = ("kind", "label", "region", "service")
FAR_FUTURE = "9999-12-31 00:00:00"


def side_key(side: str) -> Column:
    """The address key a side is attributed by: the packet address when present (it is the
    real peer behind NAT / secondary IPs), else the interface-level address."""
    return F.coalesce(F.col(f"pkt_{side}addr_key"), F.col(f"{side}addr_key"))


RANGE_COLUMNS = ("_from", "_until", "_eni_tail")


def ownership_ranges(owners_df: DataFrame) -> DataFrame:
    """The ownership intervals as :func:`with_attribution` looks them up: a flow's start
    matches an interval when ``_from <= start < _until``.

    ``_from`` is the interval's ``eni_attached_at`` when that is earlier than ``valid_from``
    and later than the last confirmation of the address's previous owner (anything else
    contradicts the table, and the observation is believed), else ``valid_from``. ``_until``
    is ``valid_to``, cut where the address's next interval starts, so no start time matches
    two intervals of one address. ``_eni_tail``: a closed interval with an attach time whose
    address was not seen next on the same ENI (that would be a new owner of the ENI, at an
    unknown moment), so the capturing ENI vouches for it up to ``_until``.

    Needs whole addresses: every interval of each ``ip_key`` in ``owners_df`` (the table, or
    :func:`filter_owners_for`'s cut of it).
    """
    by_address = Window.partitionBy("ip_key").orderBy("valid_from")
    far = F.lit(FAR_FUTURE).cast("timestamp")
    attached, valid_from, valid_to = F.col(ATTACHED_AT), F.col("valid_from"), F.col("valid_to")
    previous_seen = F.lag(F.coalesce(F.col(LAST_SEEN), valid_to, far)).over(by_address)
    believed = (
        attached.isNotNull()
        & (attached < valid_from)
        & (previous_seen.isNull() | (attached > previous_seen))
    )
    ranged = owners_df.withColumn("_from", F.when(believed, attached).otherwise(valid_from))
    next_from = F.lead("_from").over(by_address)
    same_eni_next = F.lead("eni_id").over(by_address) == F.col("eni_id")
    return ranged.withColumns(
        {
            "_until": F.least(F.coalesce(valid_to, far), F.coalesce(next_from, far)),
            "_eni_tail": attached.isNotNull()
            & valid_to.isNotNull()
            & ~F.coalesce(same_eni_next, F.lit(False)),
        }
    )


def _owner_struct(owners_df: DataFrame, side: str, scope_fresh: Column) -> DataFrame:
    missing = [c for c in RANGE_COLUMNS if c not in owners_df.columns]
    if missing:
        raise ValueError(f"owners need {missing}: pass the table through ownership_ranges()")
    owned = {*OWNER_FIELDS.values(), *DETAIL_FIELDS.values(), "eni_id"}
    cols = [F.col(c).alias(c) for c in sorted(owned)]
    return owners_df.select(
        F.col("ip_key").alias(f"_{side}_o_key"),
        F.col("_from").alias(f"_{side}_o_from"),
        F.col("_until").alias(f"_{side}_o_to"),
        F.col("valid_from").alias(f"_{side}_o_observed"),
        F.col("valid_to").isNull().alias(f"_{side}_o_open"),
        F.col(LAST_SEEN).alias(f"_{side}_o_seen"),
        F.col("_eni_tail").alias(f"_{side}_o_tail"),
        scope_fresh.alias(f"_{side}_o_fresh"),
        F.struct(*cols).alias(f"_{side}_owner"),
    )


# A side's owner rows depend only on the ownership DataFrame (the batch writer keeps one per
# table version), the side, the scope freshness and the broadcast hint: the batches that share
# them reuse the DataFrame instead of building and analysing it again.
_OWNER_SIDES: weakref.WeakKeyDictionary[DataFrame, dict[tuple[object, ...], DataFrame]] = (
    weakref.WeakKeyDictionary()
)


def _owner_side(
    owners_df: DataFrame, side: str, broadcast: bool, cols: _Columns, scopes: tuple[object, ...]
) -> DataFrame:
    held = _OWNER_SIDES.setdefault(owners_df, {})
    key = (side, broadcast, scopes)
    if key not in held:
        right = _owner_struct(owners_df, side, cols.scope_fresh)
        held[key] = F.broadcast(right) if broadcast else right
    return held[key]


@functools.cache
def _owner_match(side: str) -> Column:
    return (
        (F.col(f"_{side}_o_key") == side_key(side))
        & (F.col(f"_{side}_o_from") <= F.col("start_time"))
        & (F.col("start_time") < F.col(f"_{side}_o_to"))
    )


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


def _own_side(side: str) -> Column:
    """Whether ``side`` is the capturing ENI's own address: the side ``flow_direction`` names,
    else the side whose owner holds its address on that ENI; never a side whose packet
    address differs from its interface address (behind NAT the packet address is the peer)."""
    direction = F.col("flow_direction")
    named = F.when(direction == EGRESS, F.lit(side == "src")).when(
        direction == INGRESS, F.lit(side == "dst")
    )
    pkt = F.col(f"pkt_{side}addr_key")
    direct = pkt.isNull() | (pkt == F.col(f"{side}addr_key"))
    return F.coalesce(named, _at_capturing_eni(side), F.lit(False)) & direct


def _at_capturing_eni(side: str) -> Column:
    return F.col(f"_{side}_owner")["eni_id"] == F.col("interface_id")


def _side_outcome(side: str, freshness: datetime | None) -> tuple[dict[str, Column], ...]:
    """A side's ``_<side>_status`` (``attribution_status``) and ``_<side>_by``
    (``attributed_by``), see the module docstring, as projections applied in turn: each fact
    is computed once per row and read by name after. Written as one expression, the status
    rule appears again inside the basis (and the capturing-ENI test in both several times),
    and Spark writes every copy into the generated code and evaluates it."""
    p = f"_{side}_"
    if freshness is None:
        return ({f"{p}status": F.lit(PENDING), f"{p}by": F.lit(None).cast("string")},)
    start = F.col("start_time")
    is_open, seen = F.col(f"{p}o_open"), F.col(f"{p}o_seen")
    facts = {
        f"{p}own": _own_side(side),
        f"{p}at_eni": F.coalesce(_at_capturing_eni(side), F.lit(False)),
        f"{p}beyond": ~is_open & seen.isNotNull() & (start > seen),
    }
    own, at_eni, beyond = (F.col(f"{p}{f}") for f in ("own", "at_eni", "beyond"))
    by_capturing_eni = beyond & F.col(f"{p}o_tail") & own & at_eni
    derived = {
        f"{p}by_tail": by_capturing_eni,
        f"{p}confirmed": F.col(f"{p}o_key").isNotNull() & (~beyond | by_capturing_eni),
        f"{p}conflict": own & F.col(f"{p}owner")["eni_id"].isNotNull() & ~at_eni,
    }
    confirmed, conflict = F.col(f"{p}confirmed"), F.col(f"{p}conflict")
    # An open interval is only as current as the last observation of *its* scope: a newer
    # observation of another account/region says nothing about it.
    scope_behind = is_open & (start >= F.col(f"{p}o_fresh"))
    status = (
        F.when(side_key(side).isNull(), F.lit(UNATTRIBUTED))
        .when(start.isNull() | (start >= utc_lit(freshness)), F.lit(PENDING))
        .when(F.col(f"{p}o_key").isNotNull() & scope_behind, F.lit(PENDING))
        .when(confirmed & ~conflict, F.lit(ATTRIBUTED))
        .otherwise(F.lit(UNATTRIBUTED))
    )
    decided = F.col(f"{p}status")
    by_eni = F.col(f"{p}by_tail") | (start < F.col(f"{p}o_observed"))
    attributed_by = (
        F.when(decided == ATTRIBUTED, F.when(by_eni, F.lit(BY_ENI)).otherwise(F.lit(BY_IP)))
        .when((decided == UNATTRIBUTED) & confirmed & conflict, F.lit(CONFLICT))
    )  # fmt: skip
    return facts, derived, {f"{p}status": status}, {f"{p}by": attributed_by}


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


def _side_values(
    side: str, status: Column, shown_status: Column, attributed_by: Column
) -> dict[str, Column]:
    """One side's output values by suffix (:data:`SIDE_SUFFIXES`). ``status`` decides owner vs.
    label; ``shown_status`` is what the side's ``attribution_status`` says (an expired pending
    side: unattributed, no owner, no label)."""
    owner = F.col(f"_{side}_owner")
    label = F.col(f"_{side}_label")  # see _attribution_columns
    owned = status == ATTRIBUTED
    fallback = status == UNATTRIBUTED
    values = {"attribution_status": shown_status, "attributed_by": attributed_by}
    for out_name, field in OWNER_FIELDS.items():
        value = F.when(owned, owner[field])
        if out_name in ("kind", "region"):
            value = value.when(fallback, label[out_name])
        values[out_name] = value
    values["label"] = (
        F.when(owned, F.coalesce(owner["app"], F.lit("unknown-app")))
        .when(fallback, label["label"])
    )  # fmt: skip
    details = [owner[c].alias(name) for name, c in DETAIL_FIELDS.items()]
    values["owner"] = F.when(owned, F.struct(*details))
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
    every micro-batch would make Spark compile that code anew every batch; a side is
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

    Needs (flows): ``start_time``, ``arrival_time``, ``srcaddr_key``, ``dstaddr_key``,
    ``pkt_srcaddr_key``, ``pkt_dstaddr_key``, ``interface_id``, ``flow_direction``,
    ``account_id``, ``region``. Needs (owners): the ownership table through
    :func:`ownership_ranges`. Needs (labels): the CIDR-label table.

    Adds per side (``src_``/``dst_``): ``attribution_status``, ``attributed_by`` (``ip``,
    ``eni``; ``conflict`` on a side left unattributed because the capturing ENI and the
    address's owner disagree), ``app``, ``region``, ``az``, ``kind``, ``label`` and ``owner``
    (a struct: ``cluster``, ``account``, ``vpc``, ``resource``); and ``cross_region``,
    ``cross_az``, ``is_duplicate_view``, ``is_pending``.

    ``freshness`` is the latest observation applied; ``scope_freshness`` (``"account/region"``
    -> time, see :func:`~spark_jobs.transforms.ownership.scope_key`) the latest per scope: an
    open interval of a scope last observed before the flow is pending, not attributed.
    ``expire`` (``(now, max_wait_minutes)``): a side pending longer than ``max_wait_minutes``
    (by ``arrival_time``) is unattributed, with no CIDR fallback: given up on, never guessed.
    """
    scopes = tuple(sorted((scope_freshness or {}).items()))
    cols = _attribution_columns(freshness, scopes, expire)
    addr_labels = address_labels(flows_df, labels_df, prefix_lengths)
    staged = flows_df
    for side in SIDES:
        right = _owner_side(owners_df, side, broadcast_owners, cols, scopes)
        staged = staged.join(right, on=_owner_match(side), how="left")
        staged = _join_labels(staged, addr_labels, side)
    for step in cols.outcomes:
        staged = staged.withColumns(step)
    return staged.select(*[F.col(c) for c in flows_df.columns], *cols.outputs)


@dataclass(frozen=True)
class _Columns:
    scope_fresh: Column  # an owner row's scope freshness (null: none known)
    # projections applied in turn after the joins: each side's ``_status`` and ``_by``, then
    # its shown status and label
    outcomes: tuple[dict[str, Column], ...]
    outputs: tuple[Column, ...]  # the output columns, from the outcomes


# The attribution's expressions depend only on the plan's values, not on the batch: built once
# per distinct set (thousands of JVM calls each time) and reused by every batch that shares
# it - a stream's plans keep them until the ownership version or the minute changes.
@functools.lru_cache(maxsize=16)
def _attribution_columns(
    freshness: datetime | None,
    scopes: tuple[tuple[str, datetime], ...],
    expire: tuple[datetime, int] | None,
) -> _Columns:
    scope_fresh = (
        scope_time_map(dict(scopes))[scope_key(F.col("account_id"), F.col("region"))]
        if scopes
        else F.lit(None).cast("timestamp")
    )
    # Each side's status and basis are computed once, in projections of their own: every
    # output value reads them, and Spark would otherwise write their whole rule into the
    # generated code of each value again. Both sides' steps share each projection.
    src_steps, dst_steps = (_side_outcome(side, freshness) for side in SIDES)
    outcomes = tuple({**src, **dst} for src, dst in zip(src_steps, dst_steps, strict=True))
    # What several output values read, once per side: the status shown (expiry applied)
    # and the CIDR label.
    shown_and_label = {}
    for side in SIDES:
        status = F.col(f"_{side}_status")
        shown_and_label[f"_{side}_shown"] = _expired(status, *expire) if expire else status
        shown_and_label[f"_{side}_label"] = _side_label(side)
    outcomes = (*outcomes, shown_and_label)
    values, statuses = {}, {}
    for side in SIDES:
        status = statuses[side] = F.col(f"_{side}_status")
        values[side] = _side_values(side, status, F.col(f"_{side}_shown"), F.col(f"_{side}_by"))
    flags = _flags(values["src"], values["dst"])
    dup = _duplicate_flag(statuses["src"], statuses["dst"])
    outputs = (
        *[col.alias(f"{side}_{name}") for side in SIDES for name, col in values[side].items()],
        *[col.alias(name) for name, col in flags.items()],
        dup.alias("is_duplicate_view"),
    )
    return _Columns(scope_fresh, outcomes, outputs)


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


def _duplicate_flag(src_status: Column, dst_status: Column) -> Column:
    """The second view of a flow logged at both its ENIs.

    A flow between two ENIs whose traffic is logged appears twice: at the source ENI and at
    the destination ENI. The record captured at the destination owner's ENI
    (``interface_id`` equals that owner's ``eni_id``) is the duplicate when the source is
    attributed to an ENI too. Every ENI in the ownership table is assumed to be logged (the
    inventory and the flow logs cover the same VPCs); a peer outside it is logged once and
    its record is never a duplicate. Stateless: the two views need not meet in one batch.
    """
    src_eni, dst_eni = F.col("_src_owner")["eni_id"], F.col("_dst_owner")["eni_id"]
    dup = (
        (src_status == ATTRIBUTED)
        & (dst_status == ATTRIBUTED)
        & (F.col("interface_id") == dst_eni)
        & (src_eni != dst_eni)  # an ENI's traffic to itself has no second capturing ENI
    )
    return F.coalesce(dup, F.lit(False))
