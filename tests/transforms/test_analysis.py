"""The notebooks' aggregates on literal enriched rows."""

from __future__ import annotations

from datetime import datetime

import pytest
from enriched_sample import enriched_df, flow
from pyspark.sql import SparkSession

from spark_jobs import analysis

GIB = 1 << 30


def test_cross_region_talkers_sum_pairs_and_skip_duplicates(spark: SparkSession) -> None:
    rows = [
        flow(1, "checkout", "search", bytes_=100),
        flow(2, "checkout", "search", bytes_=50),
        flow(3, "checkout", "search", bytes_=999, is_duplicate_view=True),
        flow(4, "search", "checkout", bytes_=500),
        flow(5, "checkout", "payments", bytes_=10_000),  # same region
        flow(6, "checkout", None, bytes_=10_000),  # region of internet unknown
        flow(7, "payments", "search", bytes_=70),  # one direction only
    ]
    df = enriched_df(spark, rows)
    got = [tuple(r) for r in analysis.cross_region_talkers(df).collect()]
    assert got == [
        ("search", "eu-west-1", "checkout", "us-east-1", 1, 500, 10),
        ("checkout", "us-east-1", "search", "eu-west-1", 2, 150, 20),
        ("payments", "us-east-1", "search", "eu-west-1", 1, 70, 10),
    ]
    two_way = [tuple(r) for r in analysis.cross_region_two_way(df).collect()]
    assert two_way == [("checkout", "search", 150, 500, 650)]


def test_inter_az_traffic_costs_each_direction_and_regions_once(spark: SparkSession) -> None:
    rows = [
        flow(1, "checkout", "payments", bytes_=GIB),  # use1-az1 -> use1-az2
        flow(2, "payments", "checkout", bytes_=GIB, action="REJECT"),  # rejected: no transfer
        flow(3, "checkout", "search", bytes_=2 * GIB),  # inter-region
        flow(4, "payments", "payments", bytes_=GIB),  # same AZ
        flow(5, "checkout", None, bytes_=GIB),  # AZ of internet unknown
    ]
    df = analysis.inter_az_traffic(enriched_df(spark, rows), 0.01, 0.02)
    got = {(r.src_label, r.dst_label, r.transfer): (r.bytes, r.est_cost_usd) for r in df.collect()}
    assert got.keys() == {
        ("checkout", "payments", "inter_az"),
        ("checkout", "search", "inter_region"),
    }
    assert got["checkout", "payments", "inter_az"] == (GIB, pytest.approx(0.02))
    assert got["checkout", "search", "inter_region"] == (2 * GIB, pytest.approx(0.04))
    cheaper = analysis.inter_az_traffic(enriched_df(spark, rows[:1]), inter_az_usd_per_gb=0.005)
    assert cheaper.first().est_cost_usd == pytest.approx(0.01)


def test_top_talkers_and_rejected_flows(spark: SparkSession) -> None:
    rows = [
        flow(1, "checkout", "payments", bytes_=300),
        flow(2, "checkout", "payments", bytes_=300, action="REJECT"),
        flow(3, "search", None, bytes_=1000, action="REJECT", dstport=22),
        flow(4, "search", None, bytes_=10, action="REJECT", dstport=22),
        flow(5, None, "search", bytes_=5),
        flow(6, None, None, log_status="NODATA", is_traffic=False, bytes=None),
    ]
    df = enriched_df(spark, rows)
    top = [(r.src_label, r.dst_label, r.flows, r.bytes) for r in analysis.top_talkers(df, 2).collect()]  # fmt: skip
    assert top == [("search", "internet", 2, 1010), ("checkout", "payments", 2, 600)]
    rejected = [tuple(r)[:5] for r in analysis.rejected_flows(df).collect()]
    assert rejected == [("search", "internet", 22, 6, 2), ("checkout", "payments", 443, 6, 1)]


def test_attribution_coverage_per_hour(spark: SparkSession) -> None:
    rows = [
        flow(1, "checkout", "payments", minutes=0, dst_attributed_by="eni"),
        flow(2, "checkout", None, minutes=10),
        flow(3, None, None, minutes=70),
        flow(4, None, None, minutes=80, log_status="NODATA", is_traffic=False),
    ]
    got = [tuple(r) for r in analysis.attribution_coverage(enriched_df(spark, rows)).collect()]
    assert got == [
        (datetime(2026, 1, 1, 10), 2, 1.0, 0.5, 0.5, 0.75, 0.25),
        (datetime(2026, 1, 1, 11), 1, 0.0, 0.0, 0.0, 0.0, 0.0),
    ]
