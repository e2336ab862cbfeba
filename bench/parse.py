"""Lines/s for decode + parse vs a plain ``read.text`` + ``split`` of the same lines.

Same run, same session, same lines: the flow lines are written once as a text file (for the
baseline and for parse-only) and once as Kinesis-shaped records of gzipped CloudWatch
envelopes in Parquet (for decode + parse). Each pipeline ends in the ``noop`` sink, so the
figures are the transform's cost, not a sink's. Each is run ``--repeat`` times; the best run
counts (the first pays for plan compilation).

Run: ``python -m bench.parse [--lines N]``; writes bench/results/parse.json.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import random
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from bench import git_commit
from spark_jobs.config import SparkConfig
from spark_jobs.schemas import KINESIS_RECORD_SCHEMA
from spark_jobs.session import build_session
from spark_jobs.transforms.decode import decode_records, filter_lines
from spark_jobs.transforms.parse import filter_valid_flows, parse_flow_lines

RESULTS = Path(__file__).resolve().parent / "results" / "parse.json"


def make_lines(n: int, seed: int = 7) -> list[str]:
    """``n`` v2 default-format lines; one in ten IPv6, one in fifty NODATA."""
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        start = 1_700_000_000 + rnd.randrange(86_400)
        if i % 50 == 49:
            out.append(
                f"2 123456789010 eni-0a{i % 97:015x} - - - - - - - {start} {start + 60} - NODATA"
            )
            continue
        if i % 10 == 9:
            src, dst = (
                f"2001:db8::{rnd.randrange(65536):x}",
                f"2001:db8:1::{rnd.randrange(65536):x}",
            )
        else:
            src = f"10.{rnd.randrange(256)}.{rnd.randrange(256)}.{rnd.randrange(1, 255)}"
            dst = f"172.31.{rnd.randrange(256)}.{rnd.randrange(1, 255)}"
        out.append(
            f"2 123456789010 eni-0a{i % 97:015x} {src} {dst} {rnd.randrange(1024, 65536)} "
            f"{rnd.choice((22, 443, 5432))} 6 {rnd.randrange(1, 500)} {rnd.randrange(40, 10**6)} "
            f"{start} {start + 60} {rnd.choice(('ACCEPT', 'REJECT'))} OK"
        )
    return out


def make_records(lines: list[str], per_record: int) -> list[tuple[Any, ...]]:
    """Kinesis rows, each a gzipped CloudWatch envelope of ``per_record`` log events."""
    arrival = datetime(2024, 5, 1)
    rows = []
    for n, i in enumerate(range(0, len(lines), per_record)):
        events = [
            {"id": str(j), "timestamp": 0, "message": m}
            for j, m in enumerate(lines[i : i + per_record])
        ]
        env = {"messageType": "DATA_MESSAGE", "owner": "123456789010", "logGroup": "g",
               "logStream": "s", "subscriptionFilters": ["f"], "logEvents": events}  # fmt: skip
        rows.append(
            ("bench", "shardId-0", str(n), "pk", arrival, gzip.compress(json.dumps(env).encode()))
        )
    return rows


def timed(build: Callable[[], DataFrame], repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        build().write.format("noop").mode("overwrite").save()
        times.append(time.perf_counter() - t0)
    return times


def run(
    spark: SparkSession, n_lines: int, per_record: int, repeat: int, workdir: Path
) -> dict[str, Any]:
    lines = make_lines(n_lines)
    text_path = workdir / "lines.txt"
    text_path.write_text("\n".join(lines) + "\n")
    records_path = str(workdir / "records")
    records = make_records(lines, per_record)
    spark.createDataFrame(records, KINESIS_RECORD_SCHEMA).write.parquet(records_path)

    def baseline() -> DataFrame:
        tokens = F.split(F.col("value"), " ")
        return spark.read.text(str(text_path)).select(
            *(tokens.getItem(i).alias(f"c{i}") for i in range(14))
        )

    def parse_only() -> DataFrame:
        lines_df = spark.read.text(str(text_path)).select(
            F.lit("file:bench").alias("origin"), F.lit("0").alias("origin_offset"),
            F.lit(0).alias("origin_sub"), F.current_timestamp().alias("arrival_time"),
            F.col("value").alias("line"),
        )  # fmt: skip
        return filter_valid_flows(parse_flow_lines(lines_df, None))

    def decode_parse() -> DataFrame:
        decoded = decode_records(spark.read.parquet(records_path), "cloudwatch")
        return filter_valid_flows(parse_flow_lines(filter_lines(decoded), None))

    results: dict[str, Any] = {}
    for name, build in (
        ("read_text_split", baseline),
        ("parse", parse_only),
        ("decode_parse", decode_parse),
    ):
        times = timed(build, repeat)
        results[name] = {
            "seconds": [round(t, 3) for t in times],
            "lines_per_s": round(n_lines / min(times)),
        }
    expected = n_lines
    got = filter_valid_flows(
        parse_flow_lines(filter_lines(decode_records(spark.read.parquet(records_path))), None)
    ).count()
    return {
        "lines": n_lines,
        "events_per_record": per_record,
        "records": len(records),
        "valid_flows": got,
        "all_lines_valid": got == expected,
        "repeat": repeat,
        "master": spark.conf.get("spark.master", None),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "spark": spark.version,
        "load_avg_1m": round(os.getloadavg()[0], 2),
        "results": results,
        "decode_parse_vs_split": round(
            results["decode_parse"]["lines_per_s"] / results["read_text_split"]["lines_per_s"], 3
        ),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=200_000)
    parser.add_argument("--events-per-record", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    measured = git_commit()
    spark = build_session(
        SparkConfig(master=args.master, app_name="bench-parse", shuffle_partitions=2)
    )
    with tempfile.TemporaryDirectory(prefix="bench-parse-") as tmp:
        report = {**run(spark, args.lines, args.events_per_record, args.repeat, Path(tmp)),
                  **measured}  # fmt: skip
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    r = report["results"]
    print(
        f"parse bench: {args.lines} lines; read.text+split {r['read_text_split']['lines_per_s']:,}/s, "
        f"parse {r['parse']['lines_per_s']:,}/s, decode+parse {r['decode_parse']['lines_per_s']:,}/s "
        f"({report['decode_parse_vs_split']:.2f}x split) -> {args.output}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
