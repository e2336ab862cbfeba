"""IP ownership as a slowly changing dimension (SCD2): pure planning of interval changes.

An *observation* is what an inventory saw at one instant ``observed_at``: a set of
(ip, owner) rows plus the (account_id, region) *scopes* it covered completely. Comparing it
with the currently open intervals gives a change set:

* an open interval whose IP is observed with the same owner: nothing;
* an open interval whose IP is observed with another owner: close it at ``observed_at`` and
  open the new owner's interval at ``observed_at`` (half-open, so they do not overlap);
* an open interval whose IP is not observed: close it only if its scope was covered - a scope
  that failed or was not looked at says nothing about its IPs;
* an observed IP without an open interval: open one.

Re-planning an observation that was already applied yields no change (the plan is idempotent),
which is what makes re-runs and a lagging freshness marker safe.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from spark_jobs.transforms.ip import to_canonical_ip, to_ip_key
from spark_jobs.transforms.timelit import utc_lit

OWNER_COLUMNS: tuple[str, ...] = (
    "app",
    "cluster",
    "account_id",
    "region",
    "az",
    "vpc_id",
    "subnet_id",
    "resource_id",
    "kind",
    # The ENI that holds the address: the capturing ENI of a flow-log record names its own
    # side (duplicate views), and an ENI id is never reused.
    "eni_id",
    # When that ENI was attached to this owner, given only where the address cannot have
    # been anyone else's since then: the ENI's primary address, on an ENI that cannot be
    # moved (an instance's primary ENI, or one AWS manages for a task, load balancer or NAT
    # gateway). Null: unknown. See ``ATTACHED_AT``.
    "eni_attached_at",
)
ATTACHED_AT = "eni_attached_at"
OWNERSHIP_COLUMNS: tuple[str, ...] = (
    "ip",
    "ip_key",
    *OWNER_COLUMNS,
    "source",
    "valid_from",
    "valid_to",
)
# ``last_seen``: for a closed interval, the last observation that still saw this owner (the
# change happened at an unknown moment in (last_seen, valid_to]); null while open (an open
# interval is confirmed up to the table's freshness). Attribution uses it so that a flow in
# that gap is left unattributed instead of being guessed.
LAST_SEEN = "last_seen"
OWNERSHIP_SCHEMA = T.StructType(
    [
        T.StructField(c, T.TimestampType() if c == ATTACHED_AT else T.StringType())
        for c in OWNERSHIP_COLUMNS[:-2]
    ]
    + [
        T.StructField("valid_from", T.TimestampType()),
        T.StructField("valid_to", T.TimestampType()),
        T.StructField(LAST_SEEN, T.TimestampType()),
    ]
)
CIDR_LABEL_SCHEMA = T.StructType(
    [
        T.StructField("cidr", T.StringType()),
        T.StructField("prefix_len", T.IntegerType()),
        T.StructField("prefix_key", T.StringType()),
        T.StructField("kind", T.StringType()),
        T.StructField("service", T.StringType()),
        T.StructField("region", T.StringType()),
        T.StructField("label", T.StringType()),
    ]
)
SCOPE_SCHEMA = T.StructType(
    [T.StructField("account_id", T.StringType()), T.StructField("region", T.StringType())]
)
ACTION_CLOSE = "close"
ACTION_OPEN = "open"

Scope = tuple[str, str]  # (account_id, region)


@dataclass(frozen=True)
class Observation:
    """One inventory observation, ready to be planned against the table.

    Attributes:
        observed_at: when the inventory was taken (timezone-aware, UTC).
        rows_df: raw rows with ``ip``, the owner columns and ``source`` (see
            :func:`to_observed_ips`).
        scopes: the (account_id, region) pairs this observation covers completely.
        failed: scopes that were attempted and failed, with the reason (reported, never applied).
        label: a short description for logs (file names, "aws").
    """

    observed_at: datetime
    rows_df: DataFrame
    scopes: tuple[Scope, ...]
    failed: tuple[tuple[Scope, str], ...] = field(default=())
    label: str = ""


def to_observed_ips(raw_df: DataFrame) -> DataFrame:
    """Normalise raw observation rows: one row per IP key, canonical text, invalid IPs dropped.

    Needs ``ip``, the owner columns (:data:`OWNER_COLUMNS`; ``eni_attached_at`` as text or a
    timestamp) and ``source``. Rows whose ``ip`` is
    null or not an address (e.g. ``scope_only`` lines) are dropped. When one IP is reported by
    several owners in the same observation (overlapping private space in two VPCs, or a stale
    inventory record) the smallest owner tuple wins, so the result is deterministic and the
    table keeps its one-owner-per-instant invariant.

    Returns:
        ``ip`` (canonical), ``ip_key``, the owner columns and ``source``.
    """
    keyed = raw_df.withColumns(
        {
            "ip_key": to_ip_key(F.col("ip")),
            # observation rows are text; an attach time that is not one is unknown, never
            # a reason to drop the address
            ATTACHED_AT: F.col(ATTACHED_AT).try_cast("timestamp"),
        }
    ).filter(F.col("ip_key").isNotNull())
    best = F.min(F.struct(*[F.col(c) for c in (*OWNER_COLUMNS, "source")])).alias("o")
    return (
        keyed.groupBy("ip_key")
        .agg(best)
        .select(
            to_canonical_ip(F.col("ip_key")).alias("ip"),
            "ip_key",
            *[F.col(f"o.{c}").alias(c) for c in (*OWNER_COLUMNS, "source")],
        )
    )


def _same_owner() -> Column:
    cond = F.lit(True)
    for c in OWNER_COLUMNS:
        cond = cond & F.col(f"o_{c}").eqNullSafe(F.col(f"n_{c}"))
    return cond


def _change(
    prefix: str, action: str, valid_from: Column, valid_to: Column, last_seen: Column
) -> Column:
    cols = [F.col(f"{prefix}{c}").alias(c) for c in OWNERSHIP_COLUMNS[:-2]]
    return F.struct(
        *cols,
        valid_from.cast("timestamp").alias("valid_from"),
        valid_to.cast("timestamp").alias("valid_to"),
        last_seen.cast("timestamp").alias(LAST_SEEN),
        F.lit(action).alias("action"),
    )


def scope_key(account_id: Column, region: Column) -> Column:
    """``"account/region"``: how per-scope times are keyed (see :func:`scope_time_map`)."""
    return F.concat_ws("/", account_id, region)


def scope_time_map(times: Mapping[str, datetime]) -> Column:
    """A literal map column ``"account/region"`` -> timestamp (UTC)."""
    pairs: list[Column] = []
    for key, at in sorted(times.items()):
        pairs += [F.lit(key), utc_lit(at)]
    return F.create_map(*pairs)


def plan_ownership_changes(
    open_df: DataFrame,
    observed_df: DataFrame,
    scopes_df: DataFrame,
    observed_at: datetime,
    previous_at: datetime | None = None,
    scope_previous: Mapping[str, datetime] | None = None,
) -> DataFrame:
    """The SCD2 change set that brings the open intervals in line with an observation.

    Args:
        open_df: ownership rows (table schema); rows with a non-null ``valid_to`` are ignored.
        observed_df: output of :func:`to_observed_ips` (one row per ``ip_key``).
        scopes_df: ``account_id``, ``region`` of every scope the observation covers.
        observed_at: the observation time; closes get ``valid_to`` = it, opens ``valid_from``.
        previous_at: the previous observation applied (the table's freshness before this one):
            a closed interval's ``last_seen`` - its owner was still there then. None (no
            previous observation) falls back to the interval's ``valid_from``.
        scope_previous: per scope (``"account/region"``, see :func:`scope_key`), the previous
            observation that covered it; preferred over ``previous_at`` for the intervals of
            that scope (another scope's newer observation says nothing about this one).

    Returns:
        Rows in the table schema plus ``action`` (``'close'``: an existing open interval, keyed
        by ``ip_key`` + ``valid_from``, with its new ``valid_to``; ``'open'``: a new interval).
    """
    at = utc_lit(observed_at)
    old = open_df.filter(F.col("valid_to").isNull()).select(
        *[F.col(c).alias(f"o_{c}") for c in OWNERSHIP_COLUMNS[:-1]]
    )
    new = observed_df.select(*[F.col(c).alias(f"n_{c}") for c in OWNERSHIP_COLUMNS[:-2]])
    covered = scopes_df.select(
        F.col("account_id").alias("s_account_id"),
        F.col("region").alias("s_region"),
        F.lit(True).alias("is_covered"),
    ).distinct()
    joined = old.join(new, F.col("o_ip_key") == F.col("n_ip_key"), how="full_outer").join(
        F.broadcast(covered),
        (F.col("o_account_id") == F.col("s_account_id")) & (F.col("o_region") == F.col("s_region")),
        how="left",
    )
    has_old, has_new = F.col("o_ip_key").isNotNull(), F.col("n_ip_key").isNotNull()
    is_covered = F.coalesce(F.col("is_covered"), F.lit(False))
    same = _same_owner()
    previous = utc_lit(previous_at)
    if scope_previous:
        by_scope = scope_time_map(scope_previous)[
            scope_key(F.col("o_account_id"), F.col("o_region"))
        ]
        previous = F.coalesce(by_scope, previous)
    seen = F.coalesce(F.greatest(F.col("o_valid_from"), previous), F.col("o_valid_from"))
    is_close = has_old & F.when(has_new, ~same).otherwise(is_covered)
    is_open = has_new & (~has_old | ~same)
    changes = F.array(
        F.when(is_close, _change("o_", ACTION_CLOSE, F.col("o_valid_from"), at, seen)),
        F.when(is_open, _change("n_", ACTION_OPEN, at, F.lit(None), F.lit(None))),
    )
    return joined.select(F.explode(F.filter(changes, lambda c: c.isNotNull())).alias("c")).select(
        "c.*"
    )
