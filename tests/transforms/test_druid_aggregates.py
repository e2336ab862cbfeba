"""The Spark side of the Druid comparison on literal enriched rows: the same filters, minute
buckets, null groups, tie order and limit as the Druid SQL it is compared with."""

from __future__ import annotations

from datetime import UTC, timedelta

from enriched_sample import T0, enriched_df, flow
from pyspark.sql import SparkSession

from spark_jobs.druid import aggregates as agg

T0_MS = int(T0.replace(tzinfo=UTC).timestamp() * 1000)
MINUTE_MS = 60_000


def test_region_minute_buckets_by_utc_minute_and_counts_each_flow_once(
    spark: SparkSession,
) -> None:
    last_ms = T0 + timedelta(seconds=59, milliseconds=999)
    rows = [
        flow(1, "checkout", "search", bytes_=100, packets=1),
        flow(2, "checkout", "search", bytes_=200, packets=2, start_time=last_ms),
        flow(3, "checkout", "search", bytes_=400, packets=4, minutes=1),  # next minute
        flow(4, "checkout", "search", bytes_=999, is_duplicate_view=True),  # second view
        flow(5, "checkout", None, bytes_=50, packets=5),  # internet: null dst_region
        flow(6, None, None, log_status="NODATA", is_traffic=False, bytes=None, packets=None),
        flow(7, "payments", "checkout", bytes_=0, packets=0),  # a zero-byte flow still counts
    ]
    got = agg.region_minute_rows(agg.to_region_minute(enriched_df(spark, rows)).collect())
    assert got == [
        (T0_MS, "us-east-1", None, 1, 5, 50),
        (T0_MS, "us-east-1", "eu-west-1", 2, 3, 300),
        (T0_MS, "us-east-1", "us-east-1", 1, 0, 0),
        (T0_MS + MINUTE_MS, "us-east-1", "eu-west-1", 1, 4, 400),
    ]


def test_cross_region_pairs_order_ties_by_apps_nulls_first_and_cut_at_the_limit(
    spark: SparkSession,
) -> None:
    rows = [
        flow(1, "search", "checkout", bytes_=500),
        flow(2, "checkout", "search", bytes_=300),
        flow(3, "checkout", "search", bytes_=200),  # 500 in all: ties with search -> checkout
        flow(4, "checkout", "search", bytes_=500, dst_app=None),  # app unknown, region known
        flow(5, "payments", "search", bytes_=100),  # fourth: cut by a limit of 3
        flow(6, "checkout", "search", bytes_=9000, is_duplicate_view=True),
        flow(7, "checkout", "payments", bytes_=9000),  # same region
        flow(8, "checkout", None, bytes_=9000),  # internet: cross_region is null
    ]
    df = enriched_df(spark, rows)
    got = agg.app_pair_rows(agg.to_cross_region_pairs(df, limit=3).collect())
    assert got == [
        ("checkout", None, 1, 500),
        ("checkout", "search", 2, 500),
        ("search", "checkout", 1, 500),
    ]
    everything = agg.app_pair_rows(agg.to_cross_region_pairs(df).collect())
    assert everything[3:] == [("payments", "search", 1, 100)]
