"""The batch writer's one count query: what the input stage made of a batch (records in,
lines, quarantined, control messages - and whether they balance). What attribution made of
its flows is observed by the enriched write (:mod:`spark_jobs.transforms.batch`)."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F


def stage_counts(
    parsed: DataFrame, bad_records: DataFrame, control: DataFrame, records: DataFrame
) -> dict[str, int]:
    """Records in, lines parsed, quarantined and control messages: one aggregate over the
    union of the four (cached) inputs, so one shuffle-free pass and a single small exchange
    rather than an aggregate - and a job - per input. The batch balances
    when every input record is accounted for exactly once: ``records_in ==
    records_with_lines + bad_records + control_messages`` (a record's first line has
    ``origin_sub`` 0; a file line is its own record)."""
    tagged = parsed.select(
        F.lit("lines").alias("_of"),
        F.col("quarantine_reason").isNotNull().alias("_bad"),
        (F.col("origin_sub") == 0).alias("_first"),
    )
    for name, df in (
        ("bad_records", bad_records),
        ("control", control),
        ("records_in", records),
    ):
        tagged = tagged.unionByName(
            df.select(
                F.lit(name).alias("_of"), F.lit(False).alias("_bad"), F.lit(False).alias("_first")
            )
        )
    of = F.col("_of")
    row = tagged.agg(
        F.count(F.when(of == "lines", F.lit(1))).alias("lines"),
        F.count(F.when((of == "lines") & F.col("_bad"), F.lit(1))).alias("bad_lines"),
        F.count(F.when((of == "lines") & F.col("_first"), F.lit(1))).alias("records_with_lines"),
        *[
            F.count(F.when(of == n, F.lit(1))).alias(n)
            for n in ("bad_records", "control", "records_in")
        ],
    ).first()
    if row is None:  # aggregates without grouping always make one row
        raise RuntimeError("the stage counts query returned no row")
    got = {k: int(v) for k, v in row.asDict().items()}
    accounted = got["records_with_lines"] + got["bad_records"] + got["control"]
    return {
        "records_in": got["records_in"],
        "records_with_lines": got["records_with_lines"],
        "bad_records": got["bad_records"],
        "control_messages": got["control"],
        "records_balanced": int(got["records_in"] == accounted),
        "lines_parsed": got["lines"],
        "bad_lines": got["bad_lines"],
        "quarantined": got["bad_lines"] + got["bad_records"],
    }
