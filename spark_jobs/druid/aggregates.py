"""The same two aggregates, defined twice: as Druid SQL over the ingested datasource and as
Spark transforms over the enriched Delta table, so that both can be compared exactly.

1. ``region_minute``: flows, packets and bytes by (minute, ``src_region``, ``dst_region``).
2. ``cross_region_pairs``: the top cross-region (``src_app``, ``dst_app``) pairs by bytes.

Druid counts every flow once: the Kafka messages carry only traffic rows that are not a
flow's duplicate view, rolled up per minute with a ``flows`` count; the Spark side applies the
same filters and the same minute bucketing (``start_time`` floored to the minute, in UTC, as
``queryGranularity`` MINUTE). Rows come out as plain tuples sorted the same way.
"""

from __future__ import annotations

from typing import Any

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from spark_jobs.druid.client import DruidClient, SqlRow

# (minute_ms, src_region, dst_region, flows, packets, bytes)
RegionMinuteRow = tuple[int, str | None, str | None, int, int, int]
# (src_app, dst_app, flows, bytes)
AppPairRow = tuple[str | None, str | None, int, int]
REGION_MINUTE_COLUMNS = ("minute_ms", "src_region", "dst_region", "flows", "packets", "bytes")
APP_PAIR_COLUMNS = ("src_app", "dst_app", "flows", "bytes")
DEFAULT_TOP_PAIRS = 10


def _q(data_source: str) -> str:
    if '"' in data_source:
        raise ValueError(f"invalid datasource name: {data_source!r}")
    return f'"{data_source}"'


def region_minute_sql(data_source: str) -> str:
    """Druid SQL for aggregate 1."""
    return (
        "SELECT TIMESTAMP_TO_MILLIS(TIME_FLOOR(__time, 'PT1M')) AS minute_ms, "
        "src_region, dst_region, SUM(flows) AS flows, SUM(packets) AS packets, "
        f"SUM(bytes) AS bytes FROM {_q(data_source)} GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"
    )


def cross_region_pairs_sql(data_source: str, limit: int = DEFAULT_TOP_PAIRS) -> str:
    """Druid SQL for aggregate 2 (booleans are ingested as the strings 'true'/'false')."""
    return (
        "SELECT src_app, dst_app, SUM(flows) AS flows, SUM(bytes) AS bytes "
        f"FROM {_q(data_source)} WHERE cross_region = 'true' GROUP BY 1, 2 "
        f"ORDER BY bytes DESC, src_app, dst_app LIMIT {int(limit)}"
    )


def filter_counted_flows(enriched_df: DataFrame) -> DataFrame:
    """Keep what Druid counts: traffic rows that are not a flow's second (duplicate) view.

    Needs ``is_traffic``, ``is_duplicate_view``.
    """
    return enriched_df.where(F.col("is_traffic") & ~F.col("is_duplicate_view"))


def _minute_ms(col: Column) -> Column:
    return F.unix_millis(F.date_trunc("minute", col))


def to_region_minute(enriched_df: DataFrame) -> DataFrame:
    """Aggregate 1 from the enriched table.

    Needs ``start_time``, ``src_region``, ``dst_region``, ``packets``, ``bytes``,
    ``is_traffic``, ``is_duplicate_view``. Output: :data:`REGION_MINUTE_COLUMNS`.
    """
    return (
        filter_counted_flows(enriched_df)
        .groupBy(_minute_ms(F.col("start_time")).alias("minute_ms"), "src_region", "dst_region")
        .agg(
            F.count(F.lit(1)).alias("flows"),
            F.sum("packets").alias("packets"),
            F.sum("bytes").alias("bytes"),
        )
        .select(*REGION_MINUTE_COLUMNS)
    )


def to_cross_region_pairs(enriched_df: DataFrame, limit: int = DEFAULT_TOP_PAIRS) -> DataFrame:
    """Aggregate 2 from the enriched table, ordered as the Druid query orders it (bytes
    descending, then apps ascending with nulls first).

    Needs ``cross_region``, ``src_app``, ``dst_app``, ``bytes``, ``is_traffic``,
    ``is_duplicate_view``. Output: :data:`APP_PAIR_COLUMNS`.
    """
    return (
        filter_counted_flows(enriched_df)
        .where(F.col("cross_region"))
        .groupBy("src_app", "dst_app")
        .agg(F.count(F.lit(1)).alias("flows"), F.sum("bytes").alias("bytes"))
        .orderBy(F.desc("bytes"), F.asc_nulls_first("src_app"), F.asc_nulls_first("dst_app"))
        .limit(limit)
        .select(*APP_PAIR_COLUMNS)
    )


def _ints(row: SqlRow | Any, names: tuple[str, ...]) -> tuple[Any, ...]:
    return tuple(int(row[n] or 0) for n in names)


def _nulls_first(value: str | None) -> tuple[bool, str]:
    return (value is not None, value or "")


def region_minute_rows(rows: list[Any]) -> list[RegionMinuteRow]:
    """Druid result mappings or Spark ``Row`` objects -> sorted tuples of aggregate 1."""
    out = [
        (
            int(r["minute_ms"]),
            r["src_region"],
            r["dst_region"],
            *_ints(r, REGION_MINUTE_COLUMNS[3:]),
        )
        for r in rows
    ]
    return sorted(out, key=lambda t: (t[0], _nulls_first(t[1]), _nulls_first(t[2])))


def app_pair_rows(rows: list[Any]) -> list[AppPairRow]:
    """Druid result mappings or Spark ``Row`` objects -> tuples of aggregate 2 (order kept)."""
    return [(r["src_app"], r["dst_app"], *_ints(r, APP_PAIR_COLUMNS[2:])) for r in rows]


def druid_region_minute(client: DruidClient, data_source: str) -> list[RegionMinuteRow]:
    """Aggregate 1 from Druid."""
    return region_minute_rows(client.sql(region_minute_sql(data_source)))


def druid_cross_region_pairs(
    client: DruidClient, data_source: str, limit: int = DEFAULT_TOP_PAIRS
) -> list[AppPairRow]:
    """Aggregate 2 from Druid."""
    return app_pair_rows(client.sql(cross_region_pairs_sql(data_source, limit)))
