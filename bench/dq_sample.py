"""Cost of in-stream validation: ``validate_sample`` on a micro-batch-sized enriched frame.

    python -m bench.dq_sample [--rows 10000] [--repeat 3] [--fraction 1.0]

Builds ``--rows`` synthetic enriched rows (cached and materialised first, as a batch writer's
persisted batch would be), validates a ``--fraction`` sample with the enriched suite
``--repeat`` times and writes ``bench/results/dq_sample.json``: seconds per validation (all
runs, median), rows validated and the number of checks.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections.abc import Sequence
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from bench import git_commit
from spark_jobs.config import SparkConfig
from spark_jobs.quality.runner import validate_sample
from spark_jobs.quality.suites import build_suite
from spark_jobs.schemas import PARSED_FLOW_SCHEMA
from spark_jobs.session import build_session
from spark_jobs.transforms.enrich import DETAIL_FIELDS
from spark_jobs.transforms.ip import to_canonical_ip, to_ip_key
from spark_jobs.transforms.output import ATTRIBUTION_COLUMNS, FLAG_COLUMNS, KEY_COLUMNS

RESULTS = Path(__file__).resolve().parent / "results"
OWNER_TYPE = T.StructType([T.StructField(c, T.StringType()) for c in DETAIL_FIELDS])
ENRICHED_TYPES: dict[str, T.DataType] = {
    **{f.name: f.dataType for f in PARSED_FLOW_SCHEMA.fields if f.name not in KEY_COLUMNS},
    **{c: OWNER_TYPE if c.endswith("_owner") else T.StringType() for c in ATTRIBUTION_COLUMNS},
    **{c: T.BooleanType() for c in FLAG_COLUMNS},
    "event_date": T.DateType(),
    "event_hour": T.IntegerType(),
}


def synthetic_enriched(spark: SparkSession, rows: int) -> DataFrame:
    """``rows`` plausible enriched rows (every column of the enriched schema)."""
    n = F.col("id")
    src_ip = F.concat(F.lit("10.0."), (n % 250).cast("string"), F.lit(".7"))
    dst_ip = F.concat(F.lit("10.1."), (n % 200).cast("string"), F.lit(".9"))
    start = F.timestamp_seconds(F.lit(1_767_225_600) + n % 3600)
    owned = F.when(n % 4 == 0, "unattributed").otherwise("attributed")
    values = {
        "version": F.lit(2),
        "srcport": (n % 60000).cast("int"), "dstport": F.lit(443), "protocol": F.lit(6),
        "packets": n % 100, "bytes": n % 100 * 1200, "start_time": start,
        "end_time": start + F.expr("INTERVAL 30 SECONDS"), "action": F.lit("ACCEPT"),
        "log_status": F.lit("OK"), "is_traffic": F.lit(True), "flow_id": F.sha2(n.cast("string"), 256),
        "interface_id": F.concat(F.lit("eni-"), (n % 97).cast("string")),
        "src_attribution_status": owned, "dst_attribution_status": F.lit("attributed"),
        "src_region": F.lit("us-east-1"), "dst_region": F.when(n % 10 == 0, "eu-west-1").otherwise("us-east-1"),
        "src_app": F.lit("a"), "dst_app": F.lit("b"), "is_duplicate_view": F.lit(False),
        "event_date": F.to_date(start), "event_hour": F.hour(start),
    }  # fmt: skip
    values["srcaddr"] = to_canonical_ip(to_ip_key(src_ip))
    values["dstaddr"] = to_canonical_ip(to_ip_key(dst_ip))
    values["cross_region"] = values["src_region"] != values["dst_region"]
    cols = [values.get(c, F.lit(None)).cast(t).alias(c) for c, t in ENRICHED_TYPES.items()]
    return spark.range(rows).select(*cols)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; see the module docstring."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=10_000)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--fraction", type=float, default=1.0)
    p.add_argument("--master", default="local[2]")
    p.add_argument("--out", type=Path, default=RESULTS / "dq_sample.json")
    args = p.parse_args(argv)
    measured = git_commit()
    spark = build_session(
        SparkConfig(master=args.master, app_name="bench-dq", shuffle_partitions=2)
    )
    batch = synthetic_enriched(spark, args.rows).persist()
    batch.count()  # the writer's batch is already materialised
    runs = []
    for i in range(args.repeat):
        started = time.monotonic()
        report = validate_sample(batch, "enriched", args.fraction, seed=i)
        runs.append(time.monotonic() - started)
        print(f"run {i}: {runs[-1]:.1f}s", flush=True)
        assert report["success"], report
    result = {
        "rows": args.rows,
        "fraction": args.fraction,
        "checks": len(build_suite("enriched").expectations),
        "seconds": [round(s, 2) for s in runs],
        "median_seconds": round(statistics.median(runs), 2),
        "master": args.master,
        "load_avg_1m": round(os.getloadavg()[0], 2),
        **measured,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"dq_sample: {args.rows} rows x {args.fraction} -> {result['median_seconds']}s per batch "
        f"(median of {args.repeat}, {result['checks']} checks)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
