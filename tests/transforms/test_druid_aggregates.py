"""The Spark side of the Druid comparison on literal enriched rows: the same filters, minute
buckets, null groups, tie order and limit as the Druid SQL it is compared with."""

from __future__ import annotations

import json
from datetime import UTC, timedelta

from enriched_sample import T0, enriched_df, flow
from pyspark.sql import SparkSession

from spark_jobs.druid import aggregates as agg
from spark_jobs.transforms.output import KAFKA_DIMENSIONS, KAFKA_METRICS, to_kafka_messages

T0_MS = int(T0.replace(tzinfo=UTC).timestamp() * 1000)
MINUTE_MS = 60_000


def _minute_edges() -> list[dict]:
    """Two flows in T0's minute (its first and last millisecond), one in the next, and a
    duplicate view that must not count."""
    last_ms = T0 + timedelta(seconds=59, milliseconds=999)
    return [
        flow(1, "checkout", "search", bytes_=100, packets=1),
        flow(2, "checkout", "search", bytes_=200, packets=2, start_time=last_ms),
        flow(3, "checkout", "search", bytes_=400, packets=4, minutes=1),  # next minute
        flow(4, "checkout", "search", bytes_=999, is_duplicate_view=True),  # second view
    ]


def test_region_minute_buckets_by_utc_minute_and_counts_each_flow_once(
    spark: SparkSession,
) -> None:
    rows = [
        *_minute_edges(),
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


def _druid_region_minute(messages: list[dict]) -> list[tuple]:
    """What Druid's region_minute SQL answers from ``messages`` (its rollup adds them up)."""
    sums: dict[tuple, list[int]] = {}
    for m in messages:
        key = (m["timestamp"], m.get("src_region"), m.get("dst_region"))
        acc = sums.setdefault(key, [0, 0, 0])
        for i, metric in enumerate(("flows", "packets", "bytes")):
            acc[i] += m.get(metric) or 0
    rows = [dict(zip(agg.REGION_MINUTE_COLUMNS, (*k, *v), strict=True)) for k, v in sums.items()]
    return agg.region_minute_rows(rows)


def test_kafka_messages_roll_a_batch_up_per_minute_as_druid_does(spark: SparkSession) -> None:
    rows = [
        *_minute_edges(),
        flow(5, "checkout", None, bytes_=50, packets=5),  # internet: null dst fields
        flow(6, None, None, log_status="NODATA", is_traffic=False, bytes=None, packets=None),
        flow(7, "checkout", "search", bytes_=70, packets=7, action="REJECT"),  # a dimension
    ]
    df = enriched_df(spark, rows)
    got = [(r.key, json.loads(r.value)) for r in to_kafka_messages(df, 42).collect()]
    by_flows = sorted((m for _, m in got), key=lambda m: (m["timestamp"], m["bytes"]))
    assert [(m["timestamp"], m["flows"], m["bytes"], m["packets"]) for m in by_flows] == [
        (T0_MS, 1, 50, 5),
        (T0_MS, 1, 70, 7),
        (T0_MS, 2, 300, 3),  # flows 1 and 2: one message
        (T0_MS + MINUTE_MS, 1, 400, 4),
    ]
    for _, m in got:
        assert set(m) <= {"timestamp", *KAFKA_DIMENSIONS, *KAFKA_METRICS, "batch"}
        assert m["batch"] == 42 and m["src_cluster"] == "checkout-prod"
    internet = next(m for _, m in got if m["bytes"] == 50)
    assert "dst_app" not in internet and internet["dst_kind"] == "internet"  # null: left out
    # Druid's answers from the messages are the Spark answers from the rows
    expected = agg.region_minute_rows(agg.to_region_minute(df).collect())
    assert _druid_region_minute([m for _, m in got]) == expected
    # one key per minute and dimensions, the same on replay and in every batch
    again = {json.loads(r.value)["bytes"]: r.key for r in to_kafka_messages(df, 43).collect()}
    assert {m["bytes"]: k for k, m in got} == again and len(set(again.values())) == 4
