"""Attribution at the flow's time: table-driven cases with documentation addresses."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from pyspark.sql import functions as F

from spark_jobs.transforms.enrich import (
    filter_owners_for,
    plan_clock,
    with_attribution,
    with_duplicate_view,
    with_expired_pending,
)
from spark_jobs.transforms.ip import cidr_key_py, to_ip_key

T0 = datetime(2026, 1, 1, 0, 0, 0)


def t(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


OWNER_COLS = (
    "ip string, app string, cluster string, account_id string, region string, az string, "
    "vpc_id string, subnet_id string, resource_id string, kind string, source string, "
    "valid_from timestamp, valid_to timestamp, last_seen timestamp"
)


def owner(ip, app, region, az, frm, to=None, seen=None, kind="instance", eni="eni-x"):
    return (
        ip,
        app,
        f"{app}-prod",
        "111122223333",
        region,
        az,
        "vpc-1",
        "subnet-1",
        eni,
        kind,
        "test",
        t(frm),
        None if to is None else t(to),
        None if seen is None else t(seen),
    )


OWNERS = [
    # 192.0.2.10: api until minute 10 (last confirmed at 8), then web from 10, still owned
    owner("192.0.2.10", "api", "us-east-1", "us-east-1a", 0, to=10, seen=8, eni="eni-api"),
    owner("192.0.2.10", "web", "us-east-1", "us-east-1b", 10, eni="eni-web"),
    owner("192.0.2.20", "db", "eu-west-1", "eu-west-1a", 0, eni="eni-db"),
    owner("2001:db8::20", "cache", "us-east-1", "us-east-1a", 0, eni="eni-cache"),
    owner("192.0.2.30", "queue", "us-east-1", "us-east-1c", 0, eni="eni-queue"),
]
LABELS = [
    ("198.51.100.0/24", "aws_service", "S3", "us-east-1", "AWS:S3"),
    ("198.51.100.128/25", "aws_service", "DYNAMODB", "us-east-1", "AWS:DYNAMODB"),
    ("192.0.2.0/24", "vpc", None, "us-east-1", "vpc-1"),
]
FRESH = t(30)

FLOW_COLS = (
    "name string, src string, dst string, pkt_src string, start_time timestamp, "
    "arrival_time timestamp, interface_id string, flow_direction string"
)
# name, src, dst, pkt_src, start(min), expected (src status, src app/label, dst status, dst label)
CASES = [
    ("old_owner", "192.0.2.10", "192.0.2.20", None, 5, ("attributed", "api", "attributed", "db")),
    (
        "uncertain_gap",
        "192.0.2.10",
        "192.0.2.20",
        None,
        9,
        ("unattributed", "vpc-1", "attributed", "db"),
    ),
    ("new_owner", "192.0.2.10", "192.0.2.20", None, 12, ("attributed", "web", "attributed", "db")),
    ("pending", "192.0.2.10", "192.0.2.20", None, 31, ("pending", None, "pending", None)),
    ("ipv6", "2001:db8::20", "192.0.2.30", None, 1, ("attributed", "cache", "attributed", "queue")),
    (
        "longest_prefix",
        "192.0.2.20",
        "198.51.100.200",
        None,
        1,
        ("attributed", "db", "unattributed", "AWS:DYNAMODB"),
    ),
    (
        "shorter_prefix",
        "192.0.2.20",
        "198.51.100.7",
        None,
        1,
        ("attributed", "db", "unattributed", "AWS:S3"),
    ),
    (
        "internet",
        "203.0.113.9",
        "192.0.2.20",
        None,
        1,
        ("unattributed", "internet", "attributed", "db"),
    ),
    (
        "vpc_unowned",
        "192.0.2.99",
        "192.0.2.20",
        None,
        1,
        ("unattributed", "vpc-1", "attributed", "db"),
    ),
    (
        "pkt_addr_wins",
        "192.0.2.99",
        "192.0.2.20",
        "192.0.2.30",
        1,
        ("attributed", "queue", "attributed", "db"),
    ),
    ("bad_address", None, "192.0.2.20", None, 1, ("unattributed", None, "attributed", "db")),
    (
        "before_any_owner",
        "192.0.2.20",
        "192.0.2.30",
        None,
        -5,
        ("unattributed", "vpc-1", "unattributed", "vpc-1"),
    ),
]


@pytest.fixture(scope="module")
def enriched(spark):
    return _attribute(spark)


def _attribute(spark, filtered=False, **kwargs):
    flows = spark.createDataFrame(
        [(c[0], c[1], c[2], c[3], t(c[4]), t(c[4] + 2), "eni-src", None) for c in CASES], FLOW_COLS
    ).select(
        "*",
        to_ip_key(F.col("src")).alias("srcaddr_key"),
        to_ip_key(F.col("dst")).alias("dstaddr_key"),
        to_ip_key(F.col("pkt_src")).alias("pkt_srcaddr_key"),
        F.lit(None).cast("string").alias("pkt_dstaddr_key"),
        F.lit(443).alias("srcport"),
        F.lit(50000).alias("dstport"),
        F.lit(6).alias("protocol"),
        F.sha2(F.col("name"), 256).alias("flow_id"),
    )
    owners = spark.createDataFrame(OWNERS, OWNER_COLS).withColumn("ip_key", to_ip_key(F.col("ip")))
    label_rows = [(c, *cidr_key_py(c), k, s, r, lab) for c, k, s, r, lab in LABELS]
    labels = spark.createDataFrame(
        label_rows,
        "cidr string, prefix_len int, prefix_key string, kind string, service string, "
        "region string, label string",
    )
    lengths = sorted({r[1] for r in label_rows})
    if filtered:
        owners = filter_owners_for(flows, owners)
    return with_attribution(
        flows, owners, labels, freshness=FRESH, prefix_lengths=lengths, **kwargs
    )


def test_owners_cut_to_the_batch_addresses_attribute_the_same(spark, enriched):
    # the large-ownership path: semi-join to the batch's addresses, then a shuffle join
    cut = _attribute(spark, filtered=True, broadcast_owners=False)
    assert sorted(cut.collect()) == sorted(enriched.collect())
    flows = spark.createDataFrame(
        [("192.0.2.10", None, "192.0.2.30")], "s string, d string, p string"
    ).select(
        to_ip_key(F.col("s")).alias("srcaddr_key"),
        to_ip_key(F.col("d")).alias("dstaddr_key"),
        to_ip_key(F.col("p")).alias("pkt_srcaddr_key"),
        F.lit(None).cast("string").alias("pkt_dstaddr_key"),
    )
    owners = spark.createDataFrame(OWNERS, OWNER_COLS).withColumn("ip_key", to_ip_key(F.col("ip")))
    kept = sorted((r.ip, r.app) for r in filter_owners_for(flows, owners).collect())
    assert kept == [("192.0.2.30", "queue")]  # the packet address wins over srcaddr


def test_open_interval_of_a_scope_observed_before_the_flow_is_pending(spark):
    # eu-west-1 (db's scope) was last observed at minute 4; us-east-1 is fresh (minute 30).
    # A newer observation of another scope must not vouch for db's still-open interval.
    scopes = {"111122223333/eu-west-1": t(4), "111122223333/us-east-1": t(30)}
    got = {
        r.name: (r.src_attribution_status, r.dst_attribution_status, r.dst_app)
        for r in _attribute(spark, scope_freshness=scopes).collect()
    }
    assert got["old_owner"] == ("attributed", "pending", None)  # flow at 5 > db seen at 4
    assert got["new_owner"] == ("attributed", "pending", None)
    assert got["ipv6"] == ("attributed", "attributed", "queue")  # us-east-1 only
    assert got["longest_prefix"] == ("attributed", "unattributed", None)  # db as src at 1 < 4
    assert got["before_any_owner"] == ("unattributed", "unattributed", None)


def test_each_case_gets_the_owner_at_its_time(enriched):
    got = {
        r.name: (r.src_attribution_status, r.src_label, r.dst_attribution_status, r.dst_label)
        for r in enriched.collect()
    }
    assert got == {c[0]: c[5] for c in CASES}


def test_owner_columns_and_cross_flags(enriched):
    rows = {r.name: r for r in enriched.collect()}
    old = rows["old_owner"]
    assert (old.src_app, old.src_cluster, old.src_region, old.src_az, old.src_kind) == (
        "api",
        "api-prod",
        "us-east-1",
        "us-east-1a",
        "instance",
    )
    assert (old.dst_app, old.dst_region, old.dst_account, old.dst_vpc) == (
        "db",
        "eu-west-1",
        "111122223333",
        "vpc-1",
    )
    assert old.cross_region is True and old.cross_az is True
    ipv6 = rows["ipv6"]
    assert ipv6.cross_region is False and ipv6.cross_az is True
    # unattributed sides never carry an app; labels give kind/region only
    s3 = rows["shorter_prefix"]
    assert (s3.dst_app, s3.dst_kind, s3.dst_region) == (None, "aws_service", "us-east-1")
    assert s3.cross_region is True  # eu-west-1 db talking to us-east-1 S3
    assert s3.cross_az is None  # AZ unknown for a service range
    pend = rows["pending"]
    assert pend.is_pending is True and pend.cross_region is None and pend.src_app is None
    assert rows["new_owner"].is_pending is False


def test_no_row_is_multiplied_by_the_joins(enriched):
    assert sorted(r.name for r in enriched.collect()) == sorted(c[0] for c in CASES)


def test_expired_pending_becomes_unattributed(enriched):
    # arrival at minute 33; 10 minutes of waiting allowed
    still = with_expired_pending(enriched, now=t(40), max_wait_minutes=10)
    expired = with_expired_pending(enriched, now=t(44), max_wait_minutes=10)
    row_still = still.where("name = 'pending'").first()
    row_expired = expired.where("name = 'pending'").first()
    assert row_still.src_attribution_status == "pending" and row_still.is_pending
    assert row_expired.src_attribution_status == "unattributed"
    assert row_expired.dst_attribution_status == "unattributed"
    assert row_expired.is_pending is False and row_expired.src_app is None
    # final rows are untouched
    assert expired.where("name = 'old_owner'").first().src_app == "api"
    # a batch plan's clock counts in whole minutes: 43:30 is minute 43, not past 33 + 10
    assert plan_clock(t(43.5)) == t(43)
    late = with_expired_pending(enriched, now=plan_clock(t(43.5)), max_wait_minutes=10)
    assert late.where("name = 'pending'").first().src_attribution_status == "pending"


def test_expiry_inside_the_attribution_equals_expiring_afterwards(spark, enriched):
    # the batch writer folds the expiry into with_attribution's one projection
    for minute, status in ((40, "pending"), (44, "unattributed")):
        folded = _attribute(spark, expire=(t(minute), 10))
        after = with_expired_pending(enriched, now=t(minute), max_wait_minutes=10)
        assert folded.columns == after.columns
        assert sorted(folded.collect()) == sorted(after.collect())
        row = folded.where("name = 'pending'").first()
        assert (row.src_attribution_status, row.is_pending) == (status, status == "pending")


def test_no_freshness_means_everything_is_pending(spark, enriched):
    flows = enriched.select(
        "name",
        "start_time",
        "arrival_time",
        "interface_id",
        "flow_direction",
        "srcaddr_key",
        "dstaddr_key",
        "pkt_srcaddr_key",
        "pkt_dstaddr_key",
        "srcport",
        "dstport",
        "protocol",
        "flow_id",
    )
    empty_owners = spark.createDataFrame([], OWNER_COLS).withColumn("ip_key", F.lit("x"))
    labels = spark.createDataFrame(
        [],
        "cidr string, prefix_len int, prefix_key string, "
        "kind string, service string, region string, label string",
    )
    out = with_attribution(flows, empty_owners, labels, freshness=None, prefix_lengths=[])
    statuses = {
        (r.src_attribution_status, r.dst_attribution_status)
        for r in out.collect()
        if r.srcaddr_key is not None
    }
    assert statuses == {("pending", "pending")}


DUP_COLS = (
    "flow_id string, srcaddr_key string, dstaddr_key string, srcport int, dstport int, "
    "protocol int, start_time timestamp, interface_id string, flow_direction string, "
    "src_kind string, dst_kind string, src_attribution_status string, "
    "dst_attribution_status string"
)


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        # v2 (no direction): two views of one flow -> the second interface is the duplicate
        (
            [
                (
                    "a",
                    "k1",
                    "k2",
                    1,
                    2,
                    6,
                    t(0),
                    "eni-1",
                    None,
                    "instance",
                    "task",
                    "attributed",
                    "attributed",
                ),
                (
                    "b",
                    "k1",
                    "k2",
                    1,
                    2,
                    6,
                    t(0),
                    "eni-2",
                    None,
                    "instance",
                    "task",
                    "attributed",
                    "attributed",
                ),
            ],
            {"a": False, "b": True},
        ),
        # v5: the ingress view is the duplicate, whatever the interface order
        (
            [
                (
                    "a",
                    "k1",
                    "k2",
                    1,
                    2,
                    6,
                    t(0),
                    "eni-9",
                    "ingress",
                    "instance",
                    "instance",
                    "attributed",
                    "attributed",
                ),
                (
                    "b",
                    "k1",
                    "k2",
                    1,
                    2,
                    6,
                    t(0),
                    "eni-1",
                    "egress",
                    "instance",
                    "instance",
                    "attributed",
                    "attributed",
                ),
            ],
            {"a": True, "b": False},
        ),
        # an internet peer is logged once: never a duplicate
        (
            [
                (
                    "a",
                    "k1",
                    "k3",
                    1,
                    2,
                    6,
                    t(0),
                    "eni-1",
                    "ingress",
                    "internet",
                    "instance",
                    "unattributed",
                    "attributed",
                )
            ],
            {"a": False},
        ),
        # different start windows are different flows
        (
            [
                (
                    "a",
                    "k1",
                    "k2",
                    1,
                    2,
                    6,
                    t(0),
                    "eni-1",
                    None,
                    "instance",
                    "instance",
                    "attributed",
                    "attributed",
                ),
                (
                    "b",
                    "k1",
                    "k2",
                    1,
                    2,
                    6,
                    t(1),
                    "eni-2",
                    None,
                    "instance",
                    "instance",
                    "attributed",
                    "attributed",
                ),
            ],
            {"a": False, "b": False},
        ),
    ],
)
def test_duplicate_view_flag(spark, rows, expected):
    out = with_duplicate_view(spark.createDataFrame(rows, DUP_COLS))
    assert {r.flow_id: r.is_duplicate_view for r in out.collect()} == expected
