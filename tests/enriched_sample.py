"""Literal enriched-table rows for the quality, analysis and notebook tests.

``enriched_df(spark, rows)`` builds a DataFrame with the real enriched schema (every
``ENRICHED_COLUMNS`` column, typed as the job writes them); each row is :func:`flow` with
overrides, so a test names only what it is about. Addresses are documentation ranges.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import types as T

from spark_jobs.schemas import PARSED_FLOW_SCHEMA
from spark_jobs.transforms.enrich import DETAIL_FIELDS
from spark_jobs.transforms.output import (
    ATTRIBUTION_COLUMNS,
    ENRICHED_COLUMNS,
    FLAG_COLUMNS,
    KEY_COLUMNS,
)

OWNER_TYPE = T.StructType([T.StructField(c, T.StringType()) for c in DETAIL_FIELDS])
ENRICHED_SCHEMA = T.StructType(
    [
        *(f for f in PARSED_FLOW_SCHEMA.fields if f.name not in KEY_COLUMNS),
        *(
            T.StructField(c, OWNER_TYPE if c.endswith("_owner") else T.StringType())
            for c in ATTRIBUTION_COLUMNS
        ),
        *(T.StructField(c, T.BooleanType()) for c in FLAG_COLUMNS),
        T.StructField("event_date", T.DateType()),
        T.StructField("event_hour", T.IntegerType()),
    ]
)
assert tuple(ENRICHED_SCHEMA.names) == tuple(ENRICHED_COLUMNS)

T0 = datetime(2026, 1, 1, 10, 0, 0)

# app -> (region, az)
APPS = {
    "checkout": ("us-east-1", "use1-az1"),
    "payments": ("us-east-1", "use1-az2"),
    "search": ("eu-west-1", "euw1-az1"),
}


def _side(prefix: str, app: str | None, addr: str) -> dict[str, Any]:
    if app is None:
        return {
            f"{prefix}_attribution_status": "unattributed",
            f"{prefix}_kind": "internet",
            f"{prefix}_label": "internet",
        }
    region, az = APPS[app]
    return {
        f"{prefix}_attribution_status": "attributed",
        f"{prefix}_attributed_by": "ip",
        f"{prefix}_app": app,
        f"{prefix}_region": region,
        f"{prefix}_az": az,
        f"{prefix}_kind": "instance",
        f"{prefix}_label": app,
        f"{prefix}_owner": {
            "cluster": f"{app}-prod",
            "account": "111122223333",
            "vpc": "vpc-0a",
            "resource": f"i-{app}",
        },
    }


def flow(
    n: int,
    src: str | None = "checkout",
    dst: str | None = "payments",
    *,
    minutes: int = 0,
    bytes_: int = 1000,
    action: str = "ACCEPT",
    **overrides: Any,
) -> dict[str, Any]:
    """One enriched row: flow ``n`` from app ``src`` to app ``dst`` (None = internet),
    starting ``minutes`` after :data:`T0`; ``overrides`` set any column."""
    srcaddr, dstaddr = f"192.0.2.{n % 250 + 1}", f"198.51.100.{n % 250 + 1}"
    start = T0 + timedelta(minutes=minutes)
    row: dict[str, Any] = {
        "version": 2,
        "account_id": "111122223333",
        "interface_id": f"eni-{n:04d}",
        "srcaddr": srcaddr,
        "dstaddr": dstaddr,
        "srcport": 40000 + n,
        "dstport": 443,
        "protocol": 6,
        "packets": 10,
        "bytes": bytes_,
        "start_time": start,
        "end_time": start + timedelta(seconds=30),
        "action": action,
        "log_status": "OK",
        "is_traffic": True,
        "flow_id": f"flow-{n:04d}",
        "origin": "file:test",
        "origin_offset": str(n),
        "origin_sub": 0,
        "arrival_time": start + timedelta(minutes=1),
        **_side("src", src, srcaddr),
        **_side("dst", dst, dstaddr),
        "is_duplicate_view": False,
        "event_date": date(start.year, start.month, start.day),
        "event_hour": start.hour,
    }
    sr, dr = row.get("src_region"), row.get("dst_region")
    row["cross_region"] = None if sr is None or dr is None else sr != dr
    both = src is not None and dst is not None
    row["cross_az"] = row["src_az"] != row["dst_az"] if both else None
    row.update(overrides)
    return row


def enriched_df(spark: SparkSession, rows: list[dict[str, Any]]) -> DataFrame:
    """Rows (dicts, missing columns null) -> a DataFrame with the enriched schema."""
    names = ENRICHED_SCHEMA.names
    return spark.createDataFrame([tuple(r.get(c) for c in names) for r in rows], ENRICHED_SCHEMA)


def demo_rows() -> list[dict[str, Any]]:
    """A small, plausible enriched table: intra-AZ, inter-AZ, cross-region, internet and
    rejected flows spread over two hours."""
    pairs = [
        ("checkout", "payments"),
        ("checkout", "search"),
        ("payments", "checkout"),
        ("search", "checkout"),
        ("checkout", None),
        (None, "search"),
        ("payments", "payments"),
    ]
    rows = []
    for n in range(42):
        src, dst = pairs[n % len(pairs)]
        action = "REJECT" if n % 9 == 0 else "ACCEPT"
        rows.append(flow(n, src, dst, minutes=3 * n, bytes_=1000 * (n + 1), action=action))
    return rows
