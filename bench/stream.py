"""Streaming throughput of the whole job from Kinesis, against a plain boto3 drain of the same
stream and against ``dredge backfill`` of the same lines from files.

One run, one session: a simulated fleet's CloudWatch envelopes (~``--flows`` flow lines) fill
a fresh kinesalite stream of ``--shards`` shards, and the same lines land as flow-log files;
then (a) a plain boto3 ``GetRecords`` drain of every shard (``bench.kinesis``'s helper:
records fetched, nothing decoded) and the same drain gunzipping and JSON-decoding each
envelope (the least any consumer does); (b) a warm-up: the whole job drains every ``--warm-every``-th
envelope (default 10) from a stream of their own, not measured; (c) the streaming job (``start_stream``,
``availableNow``, Delta + Kafka sinks) drains the full stream, timed from ``start_stream`` to
the query's end; (d) ``dredge backfill`` of the files. Rates are flow lines/s; the ratios are
job / backfill (the target: >= 0.5) and job / boto3.

Run: ``python -m bench.stream [--flows N --shards S --warm-every N]``; writes bench/results/stream.json and
prints one line.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Any

from pyspark.sql import SparkSession

from bench import phase_seconds
from bench.kinesis import _boto3_drain, _client, _drain
from bench.streamkit import (
    ENDPOINT,
    REGION,
    build_ownership,
    job_config,
    new_stream,
    percentiles,
    progress_ms,
    run_bench,
    simulate_fleet,
)
from spark_jobs.jobs.enrich_flows import run_backfill, start_stream
from spark_jobs.sim.envelopes import decode
from spark_jobs.sim.kinesis import KinesisSink, kinesis_client
from spark_jobs.sinks.progress import ensure_progress_logger

RESULTS = Path(__file__).resolve().parent / "results" / "stream.json"


def _events(data: bytes) -> int:
    """Flow lines in one envelope (a CONTROL_MESSAGE carries none)."""
    body = decode(data)
    events = body["logEvents"] if body["messageType"] == "DATA_MESSAGE" else []
    return len(events) if isinstance(events, list) else 0


def _boto3_decode_drain(stream: str) -> tuple[int, float]:
    """The boto3 drain plus gunzip + JSON of every envelope: flow lines, seconds."""
    client, started, lines = _client(), time.perf_counter(), 0
    for shard in client.list_shards(StreamName=stream)["Shards"]:
        for page in _drain(client, stream, shard["ShardId"], "TRIM_HORIZON", None):
            lines += sum(_events(r["Data"]) for r in page)
    return lines, time.perf_counter() - started


def _drain_with_job(
    spark: SparkSession, root: Path, sim: Path, envelopes: list[Any], shards: int
) -> tuple[float, list[dict[str, Any]], Any]:
    """Put ``envelopes`` into a fresh stream and drain it with the whole job
    (``availableNow``, both sinks) under ``root``: seconds from ``start_stream`` to the
    query's end, the batches that read records, and the query."""
    stream = new_stream(shards)
    try:
        sink = KinesisSink(kinesis_client(REGION, ENDPOINT), stream, shards, throttle=False)
        sink.put(envelopes)
        sink.close()
        cfg = job_config(root, stream, f"bench.stream.{root.parent.name}.{root.name}",
                         "available_now")  # fmt: skip
        build_ownership(spark, cfg, sim)
        started = time.monotonic()
        query, writer = start_stream(spark, cfg)
        query.awaitTermination()
        seconds = time.monotonic() - started
        writer.close()  # its cached dimension tables go before the next run
        ensure_progress_logger(spark).wait_terminated(str(query.runId))
    finally:
        kinesis_client(REGION, ENDPOINT).delete_stream(StreamName=stream)
    batches = [m for m in writer.metrics if int(m["records_in"]) > 0]
    return seconds, batches, query


def _backfill(spark: SparkSession, root: Path, sim: Path, topic: str) -> dict[str, Any]:
    """``dredge backfill`` of the same flow lines as files (both sinks)."""
    cfg = job_config(root, "unused", topic, "available_now")
    build_ownership(spark, cfg, sim)
    started = time.monotonic()
    writer = run_backfill(spark, cfg, str(sim / "flowlogs"), "text")
    seconds = time.monotonic() - started
    lines = sum(int(m["lines_parsed"]) for m in writer.metrics)
    return {"flow_lines": lines, "seconds": round(seconds, 2),
            "flows_per_s": round(lines / seconds), "batches": len(writer.metrics)}  # fmt: skip


def measure(
    spark: SparkSession, work: Path, flows: int, shards: int, warm_every: int = 10
) -> dict[str, Any]:
    """Fill a stream, drain it with boto3, then with the job (after a warm-up drain of every
    ``warm_every``-th envelope, not measured, so that every measured run finds the JIT and
    Spark's code cache warm; 0: none), then backfill the same lines from files; returns the
    figures."""
    envelopes = simulate_fleet(work, flows, files=True)
    lines = sum(e.n_events for e in envelopes)
    sim = work / "sim"
    stream = new_stream(shards)
    try:
        sink = KinesisSink(kinesis_client(REGION, ENDPOINT), stream, shards, throttle=False)
        sink.put(envelopes)
        sink.close()
        records, boto3_s = _boto3_drain(stream)
        decoded, decode_s = _boto3_decode_drain(stream)
    finally:
        kinesis_client(REGION, ENDPOINT).delete_stream(StreamName=stream)
    if warm_every:
        _drain_with_job(spark, work / "warm", sim, envelopes[::warm_every], shards)
    job_s, batches, query = _drain_with_job(spark, work / "job", sim, envelopes, shards)
    backfill = _backfill(spark, work / "backfill", sim, f"bench.stream.{work.name}.backfill")
    job_lines = sum(int(m["lines_parsed"]) for m in batches)
    boto3_rate, job_rate = lines / boto3_s, job_lines / job_s
    return {
        "shards": shards,
        "records": len(envelopes),
        "flow_lines": lines,
        "boto3_drain": {
            "records": records,
            "seconds": round(boto3_s, 3),
            "flows_per_s": round(boto3_rate),
        },
        "boto3_drain_gunzip_json": {
            "flow_lines": decoded,
            "seconds": round(decode_s, 3),
            "flows_per_s": round(decoded / decode_s),
        },
        "dredge_stream": {
            "flow_lines": job_lines,
            "flows_final": sum(int(m["flows_final"]) for m in batches),
            "kafka_published": sum(int(m["kafka_published"]) for m in batches),
            "seconds": round(job_s, 2),
            "flows_per_s": round(job_rate),
            "batches": len(batches),
            "batch_duration_s": percentiles([float(m["duration_s"]) for m in batches]),
            "phase_s": phase_seconds(batches),
            "query_ms_p50": progress_ms(query),
            "max_records_per_batch": job_config(
                work, "-", "-", "available_now"
            ).source.max_records_per_batch,
        },
        "dredge_backfill": backfill,
        "ratio_vs_backfill": round(job_rate / backfill["flows_per_s"], 3),
        "ratio_vs_boto3": round(job_rate / boto3_rate, 4),
        "ratio_vs_boto3_gunzip_json": round(job_rate * decode_s / decoded, 4),
        "cores": os.cpu_count(),
        "load_avg_1m": round(os.getloadavg()[0], 2),
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the benchmark, write the JSON, print one line; returns the figures."""
    p = argparse.ArgumentParser(prog="python -m bench.stream", description=__doc__)
    p.add_argument("--flows", type=int, default=100_000, help="flow lines (approximately)")
    p.add_argument("--shards", type=int, default=4)
    p.add_argument("--warm-every", type=int, default=10,
                   help="warm up on every N-th envelope first (0: no warm-up)")  # fmt: skip
    p.add_argument("--out", default=str(RESULTS))
    args = p.parse_args(argv)
    result = run_bench(
        "stream",
        args.out,
        lambda spark, work: measure(spark, work, args.flows, args.shards, args.warm_every),
    )
    job, plain = result["dredge_stream"], result["boto3_drain"]
    print(f"bench.stream: {result['flow_lines']} flows in {result['records']} records, "
          f"{args.shards} shards: streaming job {job['flows_per_s']} flows/s "
          f"({job['batches']} batches, {job['seconds']} s) vs boto3 drain "
          f"{plain['flows_per_s']} flows/s: ratio {result['ratio_vs_boto3']} (vs boto3 + "
          f"gunzip + JSON {result['boto3_drain_gunzip_json']['flows_per_s']} flows/s: "
          f"{result['ratio_vs_boto3_gunzip_json']}); vs dredge backfill of the same lines "
          f"{result['dredge_backfill']['flows_per_s']} flows/s: "
          f"{result['ratio_vs_backfill']}")  # fmt: skip
    return result


if __name__ == "__main__":
    main()
