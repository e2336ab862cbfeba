"""Aggregates people ask of the enriched table (also used by the demo report)."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F


def filter_countable(enriched_df: DataFrame) -> DataFrame:
    """Traffic counted once: real traffic rows (not NODATA/SKIPDATA), one view per flow."""
    return enriched_df.where(F.col("is_traffic") & ~F.col("is_duplicate_view"))


def top_cross_region_pairs(enriched_df: DataFrame, limit: int = 10) -> DataFrame:
    """Attributed app pairs that talk across regions, by bytes: who to co-locate."""
    return (
        filter_countable(enriched_df)
        .where(F.col("cross_region") & F.col("src_app").isNotNull() & F.col("dst_app").isNotNull())
        .groupBy("src_app", "src_region", "dst_app", "dst_region")
        .agg(F.sum("bytes").alias("bytes"), F.count(F.lit(1)).alias("flows"))
        .orderBy(F.desc("bytes"), "src_app", "dst_app")
        .limit(limit)
    )


def bytes_by_region_az_minute(enriched_df: DataFrame) -> DataFrame:
    """Bytes sent per minute by source region and AZ (known sides only)."""
    return (
        filter_countable(enriched_df)
        .where(F.col("src_region").isNotNull())
        .groupBy(
            F.date_trunc("minute", "start_time").alias("minute"),
            "src_region",
            F.coalesce(F.col("src_az"), F.lit("(no az)")).alias("src_az"),
        )
        .agg(F.sum("bytes").alias("bytes"))
        .orderBy("minute", "src_region", "src_az")
    )


def attribution_status_counts(enriched_df: DataFrame) -> DataFrame:
    """Number of flow sides per attribution status (both sides stacked)."""
    sides = [
        enriched_df.select(
            F.lit(side).alias("side"), F.col(f"{side}_attribution_status").alias("status")
        )
        for side in ("src", "dst")
    ]
    return (
        sides[0]
        .unionByName(sides[1])
        .groupBy("side", "status")
        .agg(F.count(F.lit(1)).alias("sides"))
        .orderBy("side", "status")
    )
