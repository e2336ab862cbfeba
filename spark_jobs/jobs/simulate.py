"""``dredge simulate``: write a simulated fleet's flow logs, inventory and ground truth.

Outputs under ``--out``: S3-style flow-log files (``--files``, the default without a stream),
CloudWatch Logs envelopes into a Kinesis stream (``--kinesis-stream``), inventory snapshots,
ground truth, ``ip-ranges.json`` and ``vpcs.json``. See :mod:`spark_jobs.sim`.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from spark_jobs.sim.runner import DEFAULT_START, SimConfig, run


def _start(text: str) -> int:
    if text == "now":
        now = int(datetime.now(UTC).timestamp())
        return now - now % 60
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC).timestamp())


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    """The command line of ``dredge simulate``."""
    p = argparse.ArgumentParser(prog="dredge simulate", description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, required=True, help="output directory")
    p.add_argument("--minutes", type=int, default=10, help="simulated minutes")
    p.add_argument("--apps", type=int, default=30, help="number of apps")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--flows-per-minute", type=int, default=10_000,
                   help="approximate flow-log lines per simulated minute")  # fmt: skip
    p.add_argument("--start", default=datetime.fromtimestamp(DEFAULT_START, UTC).isoformat(),
                   help="ISO-8601 start of simulated time, or 'now' (floored to the minute)")  # fmt: skip
    p.add_argument("--format", dest="fmt", choices=["v2", "v5"], default="v2")
    p.add_argument("--window", choices=["60", "600", "mixed"], default="mixed",
                   help="aggregation window in seconds; mixed = 600 in eu-west-1, else 60")  # fmt: skip
    p.add_argument("--malformed-share", type=float, default=0.01)
    p.add_argument("--files", action="store_true", help="write S3-style flow-log files")
    p.add_argument("--no-truth", action="store_true", help="skip the flow ground truth")
    p.add_argument("--snapshot-every", type=int, default=60, help="seconds between snapshots")
    p.add_argument("--snapshot-lag", type=int, default=0,
                   help="seconds after observed_at a replay should apply a snapshot (manifest)")  # fmt: skip
    p.add_argument("--churn", type=float, default=1.0, help="multiplier of instance turnover")
    p.add_argument("--gzip-level", type=int, default=1)
    p.add_argument("--kinesis-stream", help="put CloudWatch Logs envelopes into this stream")
    p.add_argument("--endpoint-url", help="Kinesis endpoint (e.g. http://127.0.0.1:4567)")
    p.add_argument("--region", default="us-east-1", help="region of the Kinesis stream")
    p.add_argument("--shards", type=int, default=2, help="shards when creating the stream")
    p.add_argument("--no-throttle", action="store_true", help="ignore per-shard write limits")
    return p.parse_args(list(argv))


def main(argv: Sequence[str]) -> int:
    """Run the simulator; prints a one-line summary."""
    args = parse_args(argv)
    cfg = SimConfig(
        out=args.out,
        minutes=args.minutes,
        apps=args.apps,
        seed=args.seed,
        flows_per_minute=args.flows_per_minute,
        start=_start(args.start),
        fmt=args.fmt,
        window=args.window,
        malformed_share=args.malformed_share,
        write_files=args.files or not args.kinesis_stream,
        write_truth=not args.no_truth,
        snapshot_every_s=args.snapshot_every,
        snapshot_lag_s=args.snapshot_lag,
        churn=args.churn,
        gzip_level=args.gzip_level,
    )
    sink = None
    if args.kinesis_stream:
        from spark_jobs.sim.kinesis import KinesisSink, ensure_stream, kinesis_client

        client = kinesis_client(args.region, args.endpoint_url)
        ensure_stream(client, args.kinesis_stream, args.shards)
        sink = KinesisSink(client, args.kinesis_stream, args.shards, throttle=not args.no_throttle)
    summary = run(cfg, sink)
    print(f"simulate: {summary.line()} -> {cfg.out}")
    return 0
