"""Output shapes: the enriched Delta rows and the JSON messages Druid ingests from Kafka."""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from spark_jobs.schemas import ADDRESS_COLUMNS, PARSED_FLOW_SCHEMA
from spark_jobs.transforms.enrich import DETAIL_FIELDS, SIDE_SUFFIXES, SIDES

ATTRIBUTION_COLUMNS = tuple(f"{side}_{s}" for side in SIDES for s in SIDE_SUFFIXES)
FLAG_COLUMNS = ("cross_region", "cross_az", "is_duplicate_view")
# The 128-bit address keys are join internals: the pending table keeps them, the output not.
KEY_COLUMNS = tuple(f"{c}_key" for c in ADDRESS_COLUMNS)
PARTITION_COLUMNS = ("event_date", "event_hour")
ENRICHED_COLUMNS = (
    *(c for c in PARSED_FLOW_SCHEMA.names if c not in KEY_COLUMNS),
    *ATTRIBUTION_COLUMNS,
    *FLAG_COLUMNS,
    *PARTITION_COLUMNS,
)
# Columns the enriched table keeps Delta file statistics (min/max/nulls) for: what its queries
# filter on (time, apps, regions, addresses). Delta's default is the first 32 columns - raw
# flow-log fields mostly - and statistics cost CPU for every column they cover.
ENRICHED_STATS_COLUMNS = (
    "start_time",
    "end_time",
    "src_app",
    "dst_app",
    "src_region",
    "dst_region",
    "srcaddr",
    "dstaddr",
    "interface_id",
    "account_id",
)
# The dimensions of the per-minute messages Druid ingests (its supervisor spec lists the same):
# both sides' attribution and owner details, and the flow's protocol, action and crossings.
KAFKA_DIMENSIONS = (
    *(f"{side}_{s}" for side in SIDES for s in SIDE_SUFFIXES if s != "owner"),
    *(f"{side}_{d}" for side in SIDES for d in DETAIL_FIELDS if d != "resource"),
    "protocol",
    "action",
    "cross_region",
    "cross_az",
)
KAFKA_METRICS = ("flows", "bytes", "packets")


def _dimension(name: str) -> Column:
    side, _, field = name.partition("_")
    if side in SIDES and field in DETAIL_FIELDS:
        return F.col(f"{side}_owner")[field].alias(name)
    return F.col(name)


def to_enriched_rows(enriched_df: DataFrame) -> DataFrame:
    """Final attributed flows -> the enriched table's schema, with ``event_date``/``event_hour``
    partition columns from ``start_time`` (UTC)."""
    return enriched_df.select(
        *[c for c in ENRICHED_COLUMNS if c not in PARTITION_COLUMNS],
        F.to_date("start_time").alias("event_date"),
        F.hour("start_time").alias("event_hour"),
    )


def to_kafka_messages(enriched_rows_df: DataFrame, batch_id: int) -> DataFrame:
    """A batch's enriched rows -> its Kafka messages: ``key``, ``value`` (one JSON object) per
    minute and value of :data:`KAFKA_DIMENSIONS`, carrying the ``flows``, ``bytes`` and
    ``packets`` of that minute's flows in the batch.

    The same rollup Druid's ingestion makes (``queryGranularity`` MINUTE on the same
    dimensions), made before the topic: Druid's answers are the same from fewer messages (a
    flow's detail stays in Delta). Only what Druid counts is sent: traffic rows
    (not NODATA/SKIPDATA) that are not a flow's duplicate view. ``timestamp`` is the minute in
    epoch milliseconds (Druid's ``timestampSpec`` ``millis``); ``batch`` names the micro-batch
    whose enriched commit holds the flows. The key is a digest of the minute and the
    dimensions, so a group's messages from every batch land on one partition; they add up,
    so the topic must not be compacted. Deterministic: a replay of a batch, reading the same
    rows, sends the same messages.
    """
    minute = F.unix_millis(F.date_trunc("minute", "start_time")).alias("timestamp")
    counted = enriched_rows_df.where(F.col("is_traffic") & ~F.col("is_duplicate_view"))
    groups = counted.groupBy(minute, *(_dimension(c) for c in KAFKA_DIMENSIONS)).agg(
        F.count(F.lit(1)).alias("flows"),
        F.sum("bytes").alias("bytes"),
        F.sum("packets").alias("packets"),
    )
    key = F.sha2(F.to_json(F.struct("timestamp", *KAFKA_DIMENSIONS)), 256)
    body = F.struct("timestamp", *KAFKA_DIMENSIONS, *KAFKA_METRICS, F.lit(batch_id).alias("batch"))
    return groups.select(key.alias("key"), F.to_json(body).alias("value"))
