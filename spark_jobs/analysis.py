"""Exploratory analyses of the enriched table, shared by the notebooks (pure, no actions).

Every function takes the enriched table (or a slice of it) and returns a small aggregate the
notebooks turn into plots. Flows logged at both ENIs appear twice (``is_duplicate_view``); the
second view is always dropped so bytes are counted once.

Transfer cost: AWS bills inter-AZ traffic in each direction (the sender's and the receiver's
side are each charged, $0.01/GB by default, so $0.02 per GB moved) and inter-region traffic
once, on the sending side ($0.02/GB by default). A GB is 2^30 bytes. Estimates only: prices
vary by region pair and some paths (e.g. through a NAT gateway or a peering link) differ.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

GIB = float(1 << 30)
INTER_AZ_USD_PER_GB = 0.01
INTER_REGION_USD_PER_GB = 0.02
ATTRIBUTED = "attributed"
BY_ENI = "eni"
PAIR_COLUMNS = ("src_label", "dst_label")


def _sums() -> list[Column]:
    return [
        F.count(F.lit(1)).alias("flows"),
        F.sum("bytes").alias("bytes"),
        F.sum("packets").alias("packets"),
    ]


def filter_unique_traffic(enriched_df: DataFrame) -> DataFrame:
    """Keep rows carrying traffic, once per flow (drops NODATA/SKIPDATA and duplicate views).

    Needs: ``is_traffic``, ``is_duplicate_view``.
    """
    return enriched_df.where(
        F.coalesce(F.col("is_traffic"), F.lit(False))
        & ~F.coalesce(F.col("is_duplicate_view"), F.lit(False))
    )


def cross_region_talkers(enriched_df: DataFrame) -> DataFrame:
    """Application pairs talking across regions, most bytes first: candidates to co-locate.

    Needs: ``cross_region``, ``src_label``/``dst_label``, ``src_region``/``dst_region``,
    ``bytes``, ``packets`` and the columns of :func:`filter_unique_traffic`.
    Returns: ``src_label, src_region, dst_label, dst_region, flows, bytes, packets``.
    """
    keys = ["src_label", "src_region", "dst_label", "dst_region"]
    return (
        enriched_df.transform(filter_unique_traffic)
        .where(F.col("cross_region"))
        .groupBy(*keys)
        .agg(*_sums())
        .orderBy(F.desc("bytes"), *keys)
        .select(*keys, "flows", "bytes", "packets")
    )


def cross_region_two_way(enriched_df: DataFrame) -> DataFrame:
    """Application pairs that talk across regions in both directions, most bytes first: the
    strongest co-location candidates (both directions pay inter-region transfer).

    Needs: the columns of :func:`cross_region_talkers`.
    Returns: ``label_a, label_b, bytes_a_to_b, bytes_b_to_a, bytes`` with ``label_a < label_b``.
    """
    per_pair = (
        cross_region_talkers(enriched_df).groupBy(*PAIR_COLUMNS).agg(F.sum("bytes").alias("bytes"))
    )
    fwd, back = per_pair.alias("f"), per_pair.alias("b")
    cond = (
        (F.col("f.src_label") == F.col("b.dst_label"))
        & (F.col("f.dst_label") == F.col("b.src_label"))
        & (F.col("f.src_label") < F.col("f.dst_label"))
    )
    return (
        fwd.join(back, on=cond, how="inner")
        .select(
            F.col("f.src_label").alias("label_a"),
            F.col("f.dst_label").alias("label_b"),
            F.col("f.bytes").alias("bytes_a_to_b"),
            F.col("b.bytes").alias("bytes_b_to_a"),
            (F.col("f.bytes") + F.col("b.bytes")).alias("bytes"),
        )
        .orderBy(F.desc("bytes"), "label_a", "label_b")
    )


def _transfer_kind() -> Column:
    return (
        F.when(F.col("cross_region"), F.lit("inter_region"))
        .when(F.col("cross_az"), F.lit("inter_az"))
        .otherwise(F.lit("same_az"))
    )


def inter_az_traffic(
    enriched_df: DataFrame,
    inter_az_usd_per_gb: float = INTER_AZ_USD_PER_GB,
    inter_region_usd_per_gb: float = INTER_REGION_USD_PER_GB,
) -> DataFrame:
    """Accepted traffic that leaves its AZ, per application pair, with an estimated cost.

    Flows whose two zones are not both known are left out (``cross_az`` null).

    Needs: ``action``, ``cross_region``, ``cross_az``, ``src_label``/``dst_label``,
    ``src_az``/``dst_az``, ``bytes``, ``packets``.
    Returns: ``src_label, dst_label, transfer, flows, bytes, packets, gb, est_cost_usd``
    (``transfer`` is ``inter_az`` or ``inter_region``), most expensive first.
    """
    rate = (
        F.when(F.col("transfer") == "inter_region", F.lit(inter_region_usd_per_gb))
        # charged on the way out and on the way in
        .otherwise(F.lit(2 * inter_az_usd_per_gb))
    )
    keys = [*PAIR_COLUMNS, "transfer"]
    return (
        enriched_df.transform(filter_unique_traffic)
        .where((F.col("action") == "ACCEPT") & F.col("cross_az").isNotNull())
        .withColumn("transfer", _transfer_kind())
        .where(F.col("transfer") != "same_az")
        .groupBy(*keys)
        .agg(*_sums())
        .withColumn("gb", F.col("bytes") / F.lit(GIB))
        .withColumn("est_cost_usd", F.col("gb") * rate)
        .orderBy(F.desc("est_cost_usd"), *keys)
        .select(*keys, "flows", "bytes", "packets", "gb", "est_cost_usd")
    )


def top_talkers(enriched_df: DataFrame, n: int = 10) -> DataFrame:
    """The ``n`` (source, destination) label pairs moving the most bytes.

    Needs: ``src_label``, ``dst_label``, ``bytes``, ``packets`` and the columns of
    :func:`filter_unique_traffic`. Returns: ``src_label, dst_label, flows, bytes, packets``.
    """
    return (
        enriched_df.transform(filter_unique_traffic)
        .groupBy(*PAIR_COLUMNS)
        .agg(*_sums())
        .orderBy(F.desc("bytes"), *PAIR_COLUMNS)
        .limit(n)
        .select(*PAIR_COLUMNS, "flows", "bytes", "packets")
    )


def rejected_flows(enriched_df: DataFrame, n: int = 20) -> DataFrame:
    """The ``n`` most frequent rejected (source, destination, port, protocol) combinations.

    Needs: ``action``, ``src_label``, ``dst_label``, ``dstport``, ``protocol``, ``packets``,
    ``bytes`` and the columns of :func:`filter_unique_traffic`.
    Returns: ``src_label, dst_label, dstport, protocol, flows, bytes, packets``.
    """
    keys = [*PAIR_COLUMNS, "dstport", "protocol"]
    return (
        enriched_df.transform(filter_unique_traffic)
        .where(F.col("action") == "REJECT")
        .groupBy(*keys)
        .agg(*_sums())
        .orderBy(F.desc("flows"), *keys)
        .limit(n)
        .select(*keys, "flows", "bytes", "packets")
    )


def attribution_coverage(enriched_df: DataFrame, unit: str = "hour") -> DataFrame:
    """Share of attributed flow sides per time bucket (``date_trunc(unit, start_time)``).

    Needs: ``start_time``, ``src_attribution_status``, ``dst_attribution_status`` and the
    columns of :func:`filter_unique_traffic`.
    Returns: ``bucket, flows, src_share, dst_share, both_share, sides_share`` and
    ``eni_share`` (sides attributed through an ENI, see ``attributed_by``) in time order.
    """
    src = (F.col("src_attribution_status") == ATTRIBUTED).cast("double")
    dst = (F.col("dst_attribution_status") == ATTRIBUTED).cast("double")
    src_eni, dst_eni = (
        F.coalesce(F.col(f"{side}_attributed_by") == BY_ENI, F.lit(False)).cast("double")
        for side in ("src", "dst")
    )
    return (
        enriched_df.transform(filter_unique_traffic)
        .withColumn("bucket", F.date_trunc(unit, F.col("start_time")))
        .groupBy("bucket")
        .agg(
            F.count(F.lit(1)).alias("flows"),
            F.avg(src).alias("src_share"),
            F.avg(dst).alias("dst_share"),
            F.avg(src * dst).alias("both_share"),
            F.avg((src + dst) / 2).alias("sides_share"),
            F.avg((src_eni + dst_eni) / 2).alias("eni_share"),
        )
        .orderBy("bucket")
    )
