"""``dredge dq``: validate one of Dredge's tables against its Great Expectations suite.

    dredge dq --table enriched|ownership|quarantine|parsed [--path PATH] [--where SQL]
        [--result-json FILE|s3://BUCKET/KEY] [--min-attributed-share SHARE]
        [--ground-truth PATH] [--conf conf/local.yaml]

Prints one line per check (PASS/FAIL and what was observed), writes GX's result JSON
(default ``reports/dq/<table>.json``; an ``s3://`` URI is written with boto3) and exits 1
when any check fails (2 on a usage error).
The attributed-share threshold defaults to ``quality.min_attributed_share`` of ``--conf``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from spark_jobs import config
from spark_jobs.quality.checks import to_truth_sides
from spark_jobs.quality.runner import validate_table
from spark_jobs.quality.suites import TABLES
from spark_jobs.session import build_session
from spark_jobs.sinks.reports import write_report
from spark_jobs.sources.tables import read_ground_truth, read_table


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="dredge dq", description=__doc__.splitlines()[0])
    p.add_argument("--table", required=True, choices=TABLES)
    p.add_argument("--path", help="Delta table (default: the table's path from --conf)")
    p.add_argument("--where", help="SQL predicate selecting a partition or time range")
    p.add_argument(
        "--result-json",
        help="write GX's validation result here, a path or s3://bucket/key "
        "(default: reports/dq/<table>.json)",
    )
    p.add_argument(
        "--min-attributed-share",
        type=float,
        help="enriched: minimum share of attributed flow sides "
        "(default: quality.min_attributed_share of --conf)",
    )
    p.add_argument("--ground-truth", help="enriched: simulator truth (truth/flows) to compare")
    p.add_argument("--conf", default="conf/local.yaml", help="YAML config (with extends)")
    return p


def main(argv: Sequence[str]) -> int:
    """Entry point of ``dredge dq``."""
    parser = _parser()
    args = parser.parse_args(argv)
    share = args.min_attributed_share
    if share is not None and not 0.0 <= share <= 1.0:
        parser.error("--min-attributed-share must be between 0 and 1")
    if args.ground_truth and args.table != "enriched":
        parser.error("--ground-truth applies to --table enriched only")
    cfg = config.load(args.conf)
    if share is None:
        share = cfg.quality.min_attributed_share
    if args.path is None and args.table == "parsed":
        parser.error("--path is required for --table parsed")
    path = args.path or cfg.paths.resolve(args.table)
    spark = build_session(cfg.spark)
    df = read_table(spark, path, args.where)
    truth = None
    if args.ground_truth:
        truth = to_truth_sides(read_ground_truth(spark, args.ground_truth))
    result = validate_table(args.table, df, min_attributed_share=share, truth_sides_df=truth)
    scope = f" where {args.where}" if args.where else ""
    print(f"dredge dq: {args.table} at {path}{scope}")
    print(result.summary())
    out = args.result_json or str(Path("reports") / "dq" / f"{args.table}.json")
    write_report(out, json.dumps(result.result_json, indent=2, default=str))
    print(f"GX result: {out}")
    return 0 if result.success else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
