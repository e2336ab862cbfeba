"""Attribution at the flow's time: table-driven cases with documentation addresses."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from pyspark.sql import functions as F

from spark_jobs.transforms.enrich import (
    filter_owners_for,
    ownership_ranges,
    plan_clock,
    with_attribution,
)
from spark_jobs.transforms.ip import cidr_key_py, to_ip_key
from spark_jobs.transforms.ownership import CIDR_LABEL_SCHEMA

T0 = datetime(2026, 1, 1, 0, 0, 0)


def t(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


OWNER_COLS = (
    "ip string, app string, cluster string, account_id string, region string, az string, "
    "vpc_id string, subnet_id string, resource_id string, kind string, eni_id string, "
    "eni_attached_at timestamp, source string, valid_from timestamp, valid_to timestamp, "
    "last_seen timestamp"
)


def owner(
    ip, app, region, az, frm, to=None, seen=None, kind="instance", eni="eni-x", attached=None
):
    return (
        ip,
        app,
        f"{app}-prod",
        "111122223333",
        region,
        az,
        "vpc-1",
        "subnet-1",
        f"i-{app}",
        kind,
        eni,
        None if attached is None else t(attached),
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


def _attribute(spark, filtered=False, ranged=None, **kwargs):
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
    owners = ownership_ranges(owners) if ranged is None else ranged
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
    assert (old.src_app, old.src_region, old.src_az, old.src_kind) == (
        "api",
        "us-east-1",
        "us-east-1a",
        "instance",
    )
    assert old.src_owner.asDict() == {
        "cluster": "api-prod", "account": "111122223333", "vpc": "vpc-1", "resource": "i-api"
    }  # fmt: skip
    assert (old.dst_app, old.dst_region, old.dst_owner.account, old.dst_owner.vpc) == (
        "db",
        "eu-west-1",
        "111122223333",
        "vpc-1",
    )
    assert rows["internet"].src_owner is None  # no owner, no owner details
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


def test_expired_pending_becomes_unattributed(spark):
    # arrival at minute 33; 10 minutes of waiting allowed
    still = _attribute(spark, expire=(t(40), 10))
    expired = _attribute(spark, expire=(t(44), 10))
    row_still = still.where("name = 'pending'").first()
    row_expired = expired.where("name = 'pending'").first()
    assert row_still.src_attribution_status == "pending" and row_still.is_pending
    assert row_expired.src_attribution_status == "unattributed"
    assert row_expired.dst_attribution_status == "unattributed"
    assert row_expired.is_pending is False and row_expired.src_app is None
    assert row_expired.src_label is None and row_expired.src_kind is None  # never guessed
    # final rows are untouched
    assert expired.where("name = 'old_owner'").first().src_app == "api"
    # a batch plan's clock counts in whole minutes: 43:30 is minute 43, not past 33 + 10
    assert plan_clock(t(43.5)) == t(43)
    late = _attribute(spark, expire=(plan_clock(t(43.5)), 10))
    assert late.where("name = 'pending'").first().src_attribution_status == "pending"


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
    out = with_attribution(
        flows, ownership_ranges(empty_owners), labels, freshness=None, prefix_lengths=[]
    )
    statuses = {
        (r.src_attribution_status, r.dst_attribution_status)
        for r in out.collect()
        if r.srcaddr_key is not None
    }
    assert statuses == {("pending", "pending")}


DUP_OWNERS = [
    owner("192.0.2.1", "api", "us-east-1", "us-east-1a", 0, eni="eni-api"),
    owner("192.0.2.2", "db", "us-east-1", "us-east-1b", 0, eni="eni-db"),
    # a secondary address of api's ENI: traffic between two addresses of one ENI
    owner("192.0.2.3", "api", "us-east-1", "us-east-1a", 0, eni="eni-api"),
    owner("192.0.2.4", "lb", "us-east-1", "us-east-1a", 0, kind="load_balancer", eni=None),
]
# name, src, dst, capturing ENI, flow-direction, is the duplicate view
DUP_CASES = [
    ("at_source_eni", "192.0.2.1", "192.0.2.2", "eni-api", None, False),
    ("at_destination_eni", "192.0.2.1", "192.0.2.2", "eni-db", None, True),
    ("reply_at_api", "192.0.2.2", "192.0.2.1", "eni-api", "ingress", True),
    ("reply_at_db", "192.0.2.2", "192.0.2.1", "eni-db", "egress", False),
    ("internet_peer", "203.0.113.9", "192.0.2.2", "eni-db", "ingress", False),  # logged once
    ("peer_without_eni", "192.0.2.4", "192.0.2.2", "eni-db", None, False),
    ("one_eni_to_itself", "192.0.2.1", "192.0.2.3", "eni-api", None, False),
    ("pending_source", "192.0.2.1", "192.0.2.2", "eni-db", None, False),  # started at 31
]


def test_the_view_captured_at_the_destination_eni_is_the_duplicate(spark):
    rows = [
        (n, s, d, None, t(31 if n == "pending_source" else 1), t(2), eni, direction)
        for n, s, d, eni, direction, _ in DUP_CASES
    ]
    flows = spark.createDataFrame(rows, FLOW_COLS).select(
        "*",
        to_ip_key(F.col("src")).alias("srcaddr_key"),
        to_ip_key(F.col("dst")).alias("dstaddr_key"),
        F.lit(None).cast("string").alias("pkt_srcaddr_key"),
        F.lit(None).cast("string").alias("pkt_dstaddr_key"),
        F.lit(None).cast("string").alias("account_id"),
        F.lit(None).cast("string").alias("region"),
    )
    owners = spark.createDataFrame(DUP_OWNERS, OWNER_COLS).withColumn(
        "ip_key", to_ip_key(F.col("ip"))
    )
    labels = spark.createDataFrame([], CIDR_LABEL_SCHEMA)
    out = with_attribution(
        flows, ownership_ranges(owners), labels, freshness=FRESH, prefix_lengths=[]
    )
    assert {r.name: r.is_duplicate_view for r in out.collect()} == {c[0]: c[5] for c in DUP_CASES}


# ---- the capturing ENI and attach times ---------------------------------------------------
# Observations at minutes 0, 10, 20 and 30 (the freshness). 192.0.2.50 changed hands: "old"
# held it on eni-old (attached before the horizon) and was last seen at 10; "new" attached
# eni-new at 16 and was first seen at 20. 192.0.2.60 changed hands the same way, but the
# inventory gave no attach times (a secondary address, say). 192.0.2.70 sits on a secondary ENI
# that moved from inst1 to inst2 with its address (no attach times: it can move). 192.0.2.72
# sits on a moved ENI whose attach times were given anyway.
ENI_OWNERS = [
    owner("192.0.2.20", "db", "eu-west-1", "eu-west-1a", 0, eni="eni-db", attached=-90),
    owner("192.0.2.50", "old", "us-east-1", "us-east-1a", 0, 20, 10, eni="eni-old", attached=-60),
    owner("192.0.2.50", "new", "us-east-1", "us-east-1b", 20, eni="eni-new", attached=16),
    owner("192.0.2.60", "p1", "us-east-1", "us-east-1a", 0, 20, 10, eni="eni-p1"),
    owner("192.0.2.60", "p2", "us-east-1", "us-east-1a", 20, eni="eni-p2"),
    owner("192.0.2.70", "inst1", "us-east-1", "us-east-1a", 0, 20, 10, eni="eni-sec"),
    owner("192.0.2.70", "inst2", "us-east-1", "us-east-1a", 20, eni="eni-sec"),
    owner("192.0.2.72", "inst1", "us-east-1", "us-east-1a", 0, 20, 10, eni="eni-mv", attached=-5),
    owner("192.0.2.72", "inst2", "us-east-1", "us-east-1a", 20, eni="eni-mv", attached=16),
    owner("192.0.2.80", "natgw", "us-east-1", "us-east-1a", 0, eni="eni-nat", attached=-90),
]
OLD, NEW, DB = "192.0.2.50", "192.0.2.50", "192.0.2.20"
# name, src, dst, pkt_src, pkt_dst, start, capturing ENI, flow-direction (None: a v2 record),
# expected (src status, src label, src attributed_by, dst status, dst label, dst attributed_by)
ENI_CASES = [
    ("new_owner_at_its_eni_v2", NEW, DB, None, None, 17, "eni-new", None,
     ("attributed", "new", "eni", "attributed", "db", "ip")),
    ("new_owner_at_its_eni_v5", NEW, DB, None, None, 17, "eni-new", "egress",
     ("attributed", "new", "eni", "attributed", "db", "ip")),
    # the attach time vouches for the address whichever ENI captured the record
    ("new_owner_as_peer", DB, NEW, None, None, 17, "eni-db", "egress",
     ("attributed", "db", "ip", "attributed", "new", "eni")),
    ("before_the_attachment", DB, NEW, None, None, 15, "eni-db", "egress",
     ("attributed", "db", "ip", "unattributed", "vpc-1", None)),
    # past old's last observation: its own ENI captured the record, so it still existed
    ("old_owner_at_its_eni_v2", OLD, DB, None, None, 12, "eni-old", None,
     ("attributed", "old", "eni", "attributed", "db", "ip")),
    ("old_owner_at_its_eni_v5", DB, OLD, None, None, 12, "eni-old", "ingress",
     ("attributed", "db", "ip", "attributed", "old", "eni")),
    # ... but seen from a peer the address may already have been free: not guessed
    ("old_owner_as_peer", DB, OLD, None, None, 12, "eni-db", "egress",
     ("attributed", "db", "ip", "unattributed", "vpc-1", None)),
    ("no_attach_times", "192.0.2.60", DB, None, None, 15, "eni-p2", "egress",
     ("unattributed", "vpc-1", None, "attributed", "db", "ip")),
    ("moved_secondary_eni", "192.0.2.70", DB, None, None, 12, "eni-sec", "egress",
     ("unattributed", "vpc-1", None, "attributed", "db", "ip")),
    # a moved ENI's old owner has no tail (the next owner holds the same ENI), the new one
    # starts at its attach time
    ("moved_eni_old_owner", "192.0.2.72", DB, None, None, 12, "eni-mv", "egress",
     ("unattributed", "vpc-1", None, "attributed", "db", "ip")),
    ("moved_eni_new_owner", "192.0.2.72", DB, None, None, 17, "eni-mv", "egress",
     ("attributed", "inst2", "eni", "attributed", "db", "ip")),
    # at a NAT gateway the packet address is the peer behind it, never the ENI's own side
    ("nat_ingress", DB, "192.0.2.80", None, "203.0.113.9", 5, "eni-nat", "ingress",
     ("attributed", "db", "ip", "unattributed", "internet", None)),
    ("nat_egress", "192.0.2.80", "203.0.113.9", DB, None, 5, "eni-nat", "egress",
     ("attributed", "db", "ip", "unattributed", "internet", None)),
    # flow-direction says the source is the capturing ENI's, the inventory puts it elsewhere
    ("conflict", DB, "203.0.113.9", None, None, 5, "eni-other", "egress",
     ("unattributed", "vpc-1", "conflict", "unattributed", "internet", None)),
    ("no_conflict_without_direction", DB, "203.0.113.9", None, None, 5, "eni-other", None,
     ("attributed", "db", "ip", "unattributed", "internet", None)),
    # an ENI the inventory has not seen yet: newer than the freshness, pending
    ("unseen_eni", NEW, DB, None, None, 31, "eni-newer", "egress",
     ("pending", None, None, "pending", None, None)),
]  # fmt: skip


def _attribute_eni(spark, owners=ENI_OWNERS, cases=ENI_CASES):
    rows = [(c[0], c[1], c[2], c[3], t(c[5]), t(c[5] + 2), c[6], c[7]) for c in cases]
    flows = spark.createDataFrame(rows, FLOW_COLS).select(
        "*",
        to_ip_key(F.col("src")).alias("srcaddr_key"),
        to_ip_key(F.col("dst")).alias("dstaddr_key"),
        to_ip_key(F.col("pkt_src")).alias("pkt_srcaddr_key"),
        to_ip_key(F.lit(None).cast("string")).alias("pkt_dstaddr_key"),
        F.lit(None).cast("string").alias("account_id"),
        F.lit(None).cast("string").alias("region"),
    )
    pkt_dst = {c[0]: c[4] for c in cases if c[4]}
    if pkt_dst:
        mapping = F.create_map(*[F.lit(x) for kv in pkt_dst.items() for x in kv])
        flows = flows.withColumn("pkt_dstaddr_key", to_ip_key(mapping[F.col("name")]))
    owners_df = spark.createDataFrame(owners, OWNER_COLS).withColumn(
        "ip_key", to_ip_key(F.col("ip"))
    )
    label_rows = [(c, *cidr_key_py(c), k, s, r, lab) for c, k, s, r, lab in LABELS]
    labels = spark.createDataFrame(label_rows, CIDR_LABEL_SCHEMA)
    lengths = sorted({r[1] for r in label_rows})
    return with_attribution(
        flows, ownership_ranges(owners_df), labels, freshness=FRESH, prefix_lengths=lengths
    )


def test_the_capturing_eni_and_attach_times_attribute_what_addresses_alone_cannot(spark):
    got = {
        r.name: (
            r.src_attribution_status, r.src_label, r.src_attributed_by,
            r.dst_attribution_status, r.dst_label, r.dst_attributed_by,
        )
        for r in _attribute_eni(spark).collect()
    }  # fmt: skip
    assert got == {c[0]: c[8] for c in ENI_CASES}


def test_eni_attribution_carries_the_owner_and_never_multiplies_rows(spark):
    rows = _attribute_eni(spark).collect()
    assert sorted(r.name for r in rows) == sorted(c[0] for c in ENI_CASES)
    by_name = {r.name: r for r in rows}
    new = by_name["new_owner_at_its_eni_v2"]
    assert (new.src_app, new.src_az, new.src_owner.resource) == ("new", "us-east-1b", "i-new")
    assert by_name["conflict"].src_app is None and by_name["conflict"].src_owner is None


def test_an_attach_time_the_table_contradicts_is_not_believed(spark):
    # "late" says it was attached at 5, but "early" was still seen holding the address at 10:
    # the observation wins, and no start time matches both intervals
    owners = [
        owner("192.0.2.90", "early", "us-east-1", "us-east-1a", 0, 20, 10, eni="eni-e",
              attached=-5),
        owner("192.0.2.90", "late", "us-east-1", "us-east-1a", 20, eni="eni-l", attached=5),
    ]  # fmt: skip
    cases = [
        (f"at_{m}", "192.0.2.90", DB, None, None, m, eni, "egress", None)
        for m, eni in ((8, "eni-e"), (12, "eni-e"), (15, "eni-l"), (21, "eni-l"))
    ]
    got = {
        r.name: (r.src_attribution_status, r.src_app, r.src_attributed_by)
        for r in _attribute_eni(spark, owners, cases).collect()
    }
    assert got == {
        "at_8": ("attributed", "early", "ip"),
        "at_12": ("attributed", "early", "eni"),  # its ENI's tail, up to the next start (20)
        # past early's last sighting, at the other ENI: neither is vouched for
        "at_15": ("unattributed", None, None),
        "at_21": ("attributed", "late", "ip"),
    }


def test_batches_with_the_same_plan_values_share_their_expressions(spark):
    """The attribution's column expressions are built once per set of plan values (freshness,
    scope freshness, expiry clock) and reused; other values get their own."""
    from spark_jobs.transforms import enrich

    enrich._attribution_columns.cache_clear()
    first = _attribute(spark, expire=(t(40), 10)).collect()
    again = _attribute(spark, expire=(t(40), 10)).collect()
    info = enrich._attribution_columns.cache_info()
    assert (info.misses, info.hits) == (1, 1)
    assert sorted(map(str, first)) == sorted(map(str, again))
    later = _attribute(spark, expire=(t(44), 10))
    assert enrich._attribution_columns.cache_info().misses == 2
    assert later.where("name = 'pending'").first().src_attribution_status == "unattributed"


def test_batches_with_one_ownership_dataframe_share_its_owner_rows(spark):
    """Each side's owner rows are built once per ownership DataFrame and scope freshness."""
    from spark_jobs.transforms import enrich

    owners = spark.createDataFrame(OWNERS, OWNER_COLS).withColumn("ip_key", to_ip_key(F.col("ip")))
    ranged = ownership_ranges(owners)
    first = _attribute(spark, ranged=ranged).collect()
    again = _attribute(spark, ranged=ranged).collect()
    assert len(enrich._OWNER_SIDES[ranged]) == 2  # src and dst, built once
    assert sorted(map(str, first)) == sorted(map(str, again))
    # another scope freshness gets its own: db's open interval (eu-west-1, last observed at
    # minute 4) cannot vouch for a flow at minute 5
    scoped = _attribute(spark, ranged=ranged, scope_freshness={"111122223333/eu-west-1": t(4)})
    assert len(enrich._OWNER_SIDES[ranged]) == 4
    old = scoped.where("name = 'old_owner'").first()
    assert (old.src_app, old.dst_attribution_status) == ("api", "pending")
