"""The latency floor of a Spark micro-batch job on this machine: ``bench.latency``'s load and
Kinesis source, but the query only appends the raw Kinesis records to a Delta table
(``writeStream.format("delta")``, 1-second trigger) - no decode, parse, attribution, Kafka or
exactly-once bookkeeping. Whatever this takes, no job built on the same engine, source and sink
can beat; ``bench.latency`` minus this is what Dredge's own work adds. A second run replaces
Kinesis by Spark's ``rate`` source (rows stamped when due): the engine and the Delta sink
alone.

Latency of a record = commit timestamp of the ``_delta_log`` version that added its file - its
Kinesis approximate arrival time (as in ``bench.latency``).

Latency is counted per Kinesis record here (per flow line in ``bench.latency``: an envelope
of many lines weighs more there). Spark keeps the last 100 progress reports: keep
``--seconds`` under ~90 with a 1 s trigger.

Run: ``python -m bench.latency_floor [--rate FLOWS_PER_S --seconds S --shards N]``; writes
bench/results/latency_floor.json and prints one line.
"""

from __future__ import annotations

import os
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from pyspark.sql.streaming import StreamingQuery

from bench.latency import WARMUP_S, _commits, _cumsum, _Producer
from bench.streamkit import (
    ENDPOINT,
    REGION,
    job_config,
    load_args,
    new_stream,
    percentiles,
    progress_ms,
    run_bench,
    simulate_fleet,
)
from spark_jobs.sim.kinesis import KinesisSink, kinesis_client
from spark_jobs.sources.kinesis.adapters import read_kinesis, source_options

RESULTS = Path(__file__).resolve().parent / "results" / "latency_floor.json"


def _start(spark: SparkSession, stream: str, work: Path) -> tuple[StreamingQuery, str]:
    """The floor query: Kinesis records (sequence number, arrival) -> Delta, 1 s trigger."""
    cfg = job_config(work / "data", stream, "unused", "processing_time")
    table, checkpoint = str(work / "data" / "records"), str(work / "data" / "checkpoint")
    records = read_kinesis(spark, source_options(cfg.source, f"{checkpoint}-source-meta"))
    query = (
        records.select("sequence_number", "approximate_arrival_timestamp")
        .writeStream.format("delta")
        .option("checkpointLocation", checkpoint)
        .trigger(processingTime=cfg.stream.trigger_interval)
        .start(table)
    )  # fmt: skip
    return query, table


def _rows_in(query: StreamingQuery) -> int:
    return sum(int(p["numInputRows"]) for p in query.recentProgress)


def _wait_rows(query: StreamingQuery, rows: int, timeout_s: float) -> bool:
    """Poll the query's progress (bounded) until it has read ``rows`` records."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if query.exception() is not None:
            raise RuntimeError(f"floor query failed: {query.exception()}")
        if _rows_in(query) >= rows:
            return True
        time.sleep(0.2)
    return False


def _latencies(spark: SparkSession, table: str, arrival: str, since: float,
               until: float = float("inf")) -> list[float]:  # fmt: skip
    """Commit time - ``arrival`` (s) of every row of ``table`` that arrived at or after
    ``since`` and before ``until`` (the commit of the ``_delta_log`` version that added the
    row's file)."""
    commits = _commits(table)
    rows: Any = (
        spark.read.format("delta").load(table)
        .select((F.unix_millis(arrival) / 1000.0).alias("a"),
                F.element_at(F.split("_metadata.file_path", "/"), -1).alias("f"))
        .toPandas()
    )  # fmt: skip
    return [commits[r.f][0] - r.a for r in rows.itertuples(index=False) if since <= r.a < until]


def measure(spark: SparkSession, work: Path, rate: float, seconds: float,
            shards: int) -> dict[str, Any]:  # fmt: skip
    """Run the floor query under ``bench.latency``'s steady load; returns the figures."""
    envelopes = simulate_fleet(work, int(rate * (seconds + WARMUP_S) * 1.05) + 50)
    cut = next((i for i, e in enumerate(_cumsum(envelopes)) if e >= rate * WARMUP_S), 0)
    stream = new_stream(shards)
    query, table = _start(spark, stream, work)
    try:
        warm = KinesisSink(kinesis_client(REGION, ENDPOINT), stream, 1, throttle=False)
        warm.put(envelopes[: cut + 1])
        warm.close()
        if not _wait_rows(query, cut + 1, 600):
            raise TimeoutError("warm-up batch not done in 600 s")
        warm_batches = len(query.recentProgress)
        producer = _Producer(stream, envelopes[cut + 1 :], rate, seconds)
        producer.start()
        producer.join()
        if producer.error:
            raise producer.error
        sent = len(_sent(envelopes[cut + 1 :], producer.lines))  # one record per envelope
        drained = _wait_rows(query, cut + 1 + sent, 300)
        batches = [p for p in query.recentProgress[warm_batches:] if p["numInputRows"] > 0]
        durations = [p["durationMs"]["triggerExecution"] / 1000.0 for p in batches]
        timings = progress_ms(query)
    finally:
        query.stop()
        kinesis_client(REGION, ENDPOINT).delete_stream(StreamName=stream)
    latency = _latencies(spark, table, "approximate_arrival_timestamp", producer.started)
    return {
        "trigger": "1 second",
        "shards": shards,
        "rate_flows_per_s": rate,
        "seconds": seconds,
        "flows_sent": producer.lines,
        "records_sent": sent,
        "records_measured": len(latency),
        "drained": drained,
        "delta_latency_s": percentiles(latency),
        "batches": len(batches),
        "batch_duration_s": percentiles(durations),
        "query_ms_p50": timings,
        "note": "raw Kinesis records appended to Delta by writeStream (no processing): the "
        "least a micro-batch job on this source and sink takes",
        "cores": os.cpu_count(),
    }


def measure_rate_source(spark: SparkSession, work: Path, rate: float, seconds: float,
                        drain_s: float = 120.0) -> dict[str, Any]:  # fmt: skip
    """The same floor without Kinesis: Spark's ``rate`` source (rows stamped with the moment
    they are due) appended to Delta, 1 s trigger - the engine and sink alone.

    The warm-up starts once the first batch with rows has committed (a cold JVM or a new table
    can make that take seconds). Measured: the rows due in the ``seconds`` after the warm-up;
    the query runs until the table also holds rows due after that window (each wait bounded
    by ``drain_s``), so a slow batch delays rows but never drops them from the count.
    ``rows_due`` counts the source's row numbers in the window (it numbers rows 0, 1, 2, ...
    in the order they fall due), ``rows_measured`` the rows of the window found in the table."""
    table, checkpoint = str(work / "rate" / "rows"), str(work / "rate" / "checkpoint")
    query = (
        spark.readStream.format("rate").option("rowsPerSecond", max(1, int(rate))).load()
        .writeStream.format("delta").option("checkpointLocation", checkpoint)
        .trigger(processingTime="1 second").start(table)
    )  # fmt: skip
    warm = None  # batches reported by the end of the warm-up (not measured)
    try:
        if not _wait_batch_after(query, 0.0, drain_s):
            raise RuntimeError(f"rate floor query committed no rows in {drain_s:.0f} s")
        since = time.time() + WARMUP_S
        until = since + seconds
        while time.time() < until:  # the load runs for a set time
            _check(query)
            if warm is None and time.time() >= since:
                warm = len(query.recentProgress)
            time.sleep(0.5)
        # the rate source's offsets are whole seconds since the query started: a batch
        # triggered at T has read every row due before T - 1 s; one second more brings rows
        # due after the window, which shows the window is complete
        drained = _wait_batch_after(query, until + 2.0, drain_s)
        batches = [p for p in query.recentProgress[warm or 0 :] if p["numInputRows"] > 0]
    finally:
        query.stop()
    latency = _latencies(spark, table, "timestamp", since, until)
    return {
        "rows_due": _rows_due(spark, table, since, until),
        "rows_measured": len(latency),
        "drained": drained,
        "delta_latency_s": percentiles(latency),
        "batch_duration_s": percentiles(
            [p["durationMs"]["triggerExecution"] / 1000.0 for p in batches]
        ),
        "note": "Spark's rate source -> Delta: no Kinesis at all; rows due in the measured "
        "window, drained",
    }


def _rows_due(spark: SparkSession, table: str, since: float, until: float) -> int | None:
    """How many row numbers the rate source gave the rows due in [``since``, ``until``) (epoch
    s): from the first due at ``since`` to the first due at ``until``. None while ``table``
    holds no row due at or after ``until``: the end of the window is not known to be there."""
    due = F.unix_millis("timestamp") / 1000.0

    def first_due_at(moment: float) -> Any:
        return F.min(F.when(due >= moment, F.col("value")))

    [(lo, hi)] = (
        spark.read.format("delta").load(table).agg(first_due_at(since), first_due_at(until))
    ).collect()
    return None if lo is None or hi is None else int(hi - lo)


def _check(query: StreamingQuery) -> None:
    if query.exception() is not None:
        raise RuntimeError(f"rate floor query failed: {query.exception()}")


def _wait_batch_after(query: StreamingQuery, moment: float, timeout_s: float) -> bool:
    """Poll (bounded) until a batch with rows that was triggered at or after ``moment`` (epoch
    s) has finished (the rate source's end offset is taken when the batch starts)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        _check(query)
        if any(
            p["numInputRows"] > 0 and _epoch(p["timestamp"]) >= moment for p in query.recentProgress
        ):
            return True
        time.sleep(0.2)
    return False


def _epoch(iso: str) -> float:
    """A progress report's ``timestamp`` (ISO 8601, UTC, ``Z``) as epoch seconds."""
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def _sent(envelopes: list[Any], lines: int) -> list[Any]:
    """The leading envelopes that hold the producer's ``lines`` flow lines (one record each)."""
    out, total = [], 0
    for env in envelopes:
        if total >= lines:
            break
        out.append(env)
        total += env.n_events
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the benchmark, write the JSON, print one line; returns the figures."""
    args = load_args("python -m bench.latency_floor", __doc__, RESULTS, argv)

    def both(spark: SparkSession, work: Path) -> dict[str, Any]:
        kinesis = measure(spark, work, args.rate, args.seconds, args.shards)
        return {**kinesis, "rate_source": measure_rate_source(spark, work, args.rate, args.seconds)}

    result = run_bench("floor", args.out, both)
    d, b = result["delta_latency_s"], result["batch_duration_s"]
    r = result["rate_source"]["delta_latency_s"]
    print(f"bench.latency_floor: {result['records_measured']} records ({args.rate:.0f} flows/s) "
          f"raw to Delta, trigger 1 s: p50/p95/p99 {d['p50']}/{d['p95']}/{d['p99']} s; "
          f"{result['batches']} batches, median {b['p50']} s; rate source -> Delta "
          f"{r['p50']}/{r['p95']}/{r['p99']} s")  # fmt: skip
    return result


if __name__ == "__main__":
    main()
