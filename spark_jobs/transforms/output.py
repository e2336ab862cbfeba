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
# Dimensions sent to Druid (both sides, the owner details flattened), besides the timestamp
# and metrics.
KAFKA_DIMENSIONS = (
    *(f"{side}_{s}" for side in SIDES for s in SIDE_SUFFIXES if s != "owner"),
    *(f"{side}_{d}" for side in SIDES for d in DETAIL_FIELDS if d != "resource"),
    "protocol",
    "action",
    "cross_region",
    "cross_az",
    "is_duplicate_view",
    "account_id",
    "interface_id",
)


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


def to_kafka_messages(enriched_rows_df: DataFrame) -> DataFrame:
    """Enriched rows carrying traffic -> ``key`` (flow_id), ``value`` (one JSON object).

    NODATA/SKIPDATA rows (``is_traffic`` false) stay in Delta only. The timestamp is the
    flow's ``start_time`` in epoch milliseconds (Druid's ``timestampSpec`` format ``millis``).
    """
    body = F.struct(
        F.unix_millis(F.col("start_time")).alias("timestamp"),
        F.col("flow_id"),
        *[_dimension(c) for c in KAFKA_DIMENSIONS],
        F.col("bytes"),
        F.col("packets"),
    )
    return enriched_rows_df.where(F.col("is_traffic")).select(
        F.col("flow_id").alias("key"), F.to_json(body).alias("value")
    )
