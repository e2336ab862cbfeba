"""Arrival -> visible latency of the real streaming job (1-second trigger, Kinesis -> Delta +
Kafka), p50/p95/p99.

A producer thread replays a simulated fleet's CloudWatch envelopes into a fresh kinesalite
stream at a steady rate while ``start_stream`` runs. Delta latency of a row = commit timestamp
of the ``_delta_log`` version that added its file - the row's ``arrival_time`` (Kinesis
approximate arrival, millisecond-grained in kinesalite). Kafka latency = when a read_committed
consumer (a thread, running throughout) had received the last message of the flow's batch -
the flow's arrival time: the messages are per-minute rollups naming their batch, and a flow's
batch is the one whose Delta commit added its file (an upper bound for the flows of the
batch's first messages, by the milliseconds between its transactions). Ownership is built
from the simulator's snapshots, so its freshness is after every flow's start: flows are
final, never pending.

A warm-up batch (the first ``WARMUP_S`` seconds of traffic, sent at once) runs first and is not
measured: the first batch pays for Python workers, code generation and class loading.

Run: ``python -m bench.latency [--rate FLOWS_PER_S --seconds S --shards N]``; writes
bench/results/latency.json and prints one line.
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from bench.streamkit import (
    ENDPOINT,
    KAFKA,
    REGION,
    build_ownership,
    job_config,
    load_args,
    new_stream,
    percentiles,
    progress_ms,
    run_bench,
    simulate_fleet,
)
from spark_jobs.jobs.enrich_flows import start_stream
from spark_jobs.sim.envelopes import Envelope
from spark_jobs.sim.kinesis import KinesisSink, kinesis_client
from spark_jobs.sinks.progress import ensure_progress_logger

WARMUP_S = 2.0  # seconds of traffic sent first, processed, not measured
RESULTS = Path(__file__).resolve().parent / "results" / "latency.json"


class _Producer(threading.Thread):
    """Puts envelopes at ``rate`` flow lines/s (paced every 50 ms) for at most ``seconds``."""

    def __init__(self, stream: str, envelopes: list[Envelope], rate: float, seconds: float):
        super().__init__(daemon=True)
        self.sink = KinesisSink(kinesis_client(REGION, ENDPOINT), stream, 1, throttle=False)
        self.envelopes, self.rate, self.seconds = envelopes, rate, seconds
        self.lines = 0
        self.started = 0.0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.started = time.time()
            todo = iter(self.envelopes)
            nxt = next(todo, None)
            while nxt is not None and time.time() - self.started < self.seconds:
                due = self.rate * (time.time() - self.started)
                while nxt is not None and self.lines < due:
                    self.sink.put([nxt])
                    self.lines += nxt.n_events
                    nxt = next(todo, None)
                self.sink.flush()
                time.sleep(0.05)  # pacing, not synchronisation
            self.sink.close()
        except BaseException as err:  # reported by the main thread
            self.error = err


class _KafkaWatch(threading.Thread):
    """A read_committed consumer noting, per batch, when its last message became visible and
    how many flows its messages carry."""

    def __init__(self, topic: str) -> None:
        super().__init__(daemon=True)
        from confluent_kafka import Consumer

        self.consumer = Consumer({
            "bootstrap.servers": KAFKA, "group.id": f"bench-{uuid.uuid4().hex}",
            "isolation.level": "read_committed", "auto.offset.reset": "earliest",
            "enable.auto.commit": False, "fetch.wait.max.ms": 50,
        })  # fmt: skip
        self.assigned, self.stop = threading.Event(), threading.Event()
        self.seen: dict[int, float] = {}  # batch -> when its last message was received
        self.flows: dict[int, int] = {}  # batch -> flows its messages carry
        self.messages = 0
        self.consumer.subscribe([topic], on_assign=lambda c, p: self.assigned.set())

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                msgs = self.consumer.consume(num_messages=1000, timeout=0.1)
                now = time.time()
                for m in msgs:
                    if m.error() is None and m.value() is not None:
                        body = json.loads(m.value())
                        batch = int(body["batch"])
                        self.seen[batch] = now
                        self.flows[batch] = self.flows.get(batch, 0) + int(body["flows"])
                        self.messages += 1
        finally:
            self.consumer.close()


def _commits(table: str) -> dict[str, tuple[float, int]]:
    """File name -> (commit time in epoch s, batch id) of the ``_delta_log`` version that
    added it."""
    out: dict[str, tuple[float, int]] = {}
    for log in sorted(Path(table, "_delta_log").glob("*.json")):
        actions = [json.loads(line) for line in log.read_text().splitlines() if line]
        info: dict[str, Any] = next((a["commitInfo"] for a in actions if "commitInfo" in a), {})
        ts = float(info.get("inCommitTimestamp") or info["timestamp"]) / 1000.0
        batch = int(json.loads(info.get("userMetadata") or '{"batch": -1}')["batch"])
        for a in actions:
            if "add" in a:
                out[Path(a["add"]["path"]).name] = (ts, batch)
    return out


def _delta_rows(spark: SparkSession, table: str) -> list[tuple[float, float, int, bool]]:
    """(arrival, commit time, batch, counted in Kafka's messages) of every enriched row."""
    commits = _commits(table)
    rows: Any = (
        spark.read.format("delta").load(table)
        .select((F.col("is_traffic") & ~F.col("is_duplicate_view")).alias("counted"),
                (F.unix_millis("arrival_time") / 1000.0).alias("a"),
                F.element_at(F.split("_metadata.file_path", "/"), -1).alias("f"))
        .toPandas()
    )  # fmt: skip
    return [(r.a, *commits[r.f], bool(r.counted)) for r in rows.itertuples(index=False)]


def _wait(writer: Any, done: Any, timeout_s: float) -> bool:
    """Poll the job's own batch metrics (bounded) until ``done(metrics)``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if done(writer.metrics):
            return True
        time.sleep(0.2)
    return False


def _lines_done(lines: int, watch: _KafkaWatch) -> Any:
    """Every sent line went through a batch and every published message was seen."""

    def done(metrics: list[dict[str, Any]]) -> bool:
        published = sum(int(m["kafka_published"]) for m in metrics)
        return sum(int(m["lines_parsed"]) for m in metrics) >= lines and (
            watch.messages >= published
        )

    return done


def _warm_up(stream: str, envelopes: list[Envelope], writer: Any, watch: _KafkaWatch) -> int:
    """Send ``envelopes`` and wait until a batch has processed them (not measured): the first
    batch pays for Python workers, code generation and class loading."""
    sink = KinesisSink(kinesis_client(REGION, ENDPOINT), stream, 1, throttle=False)
    sink.put(envelopes)
    sink.close()
    lines = sum(e.n_events for e in envelopes)
    if not _wait(writer, _lines_done(lines, watch), 600):
        raise TimeoutError("warm-up batch not done in 600 s")
    return lines


def _figures(rows: list[tuple[float, float, int, bool]], watch: _KafkaWatch,
             since: float) -> dict[str, Any]:  # fmt: skip
    measured = [r for r in rows if r[0] >= since]
    delta_lat = [commit - arrival for arrival, commit, _, _ in measured]
    counted = [(arrival, batch) for arrival, _, batch, c in measured if c]
    kafka_lat = [watch.seen[b] - arrival for arrival, b in counted if b in watch.seen]
    in_delta = Counter(batch for _, batch in counted)
    return {
        "flows_measured": len(measured),
        "kafka_flows_measured": len(kafka_lat),
        # per measured batch, flows Delta holds that Kafka's messages do not carry, or more
        "kafka_flows_unmatched": sum(abs(n - watch.flows.get(b, 0)) for b, n in in_delta.items()),
        "kafka_messages": watch.messages,
        "delta_latency_s": percentiles(delta_lat),
        "kafka_latency_s": percentiles(kafka_lat),
    }


def measure(spark: SparkSession, work: Path, rate: float, seconds: float,
            shards: int) -> dict[str, Any]:  # fmt: skip
    """Run the streaming job under steady load; returns the figures."""
    envelopes = simulate_fleet(work, int(rate * (seconds + WARMUP_S) * 1.05) + 50)
    cut = next((i for i, e in enumerate(_cumsum(envelopes)) if e >= rate * WARMUP_S), 0)
    stream, topic = new_stream(shards), f"bench.latency.{work.name}"
    cfg = job_config(work / "data", stream, topic, "processing_time")
    build_ownership(spark, cfg, work / "sim")
    query, writer = start_stream(spark, cfg)
    watch = _KafkaWatch(topic)
    watch.start()
    try:
        if not watch.assigned.wait(60):
            raise TimeoutError("kafka consumer got no assignment in 60 s")
        warm_lines = _warm_up(stream, envelopes[: cut + 1], writer, watch)
        warm_batches = len(writer.metrics)
        producer = _Producer(stream, envelopes[cut + 1 :], rate, seconds)
        producer.start()
        producer.join()
        if producer.error:
            raise producer.error
        drained = _wait(writer, _lines_done(warm_lines + producer.lines, watch), 300)
    finally:
        query.stop()
        writer.close()
        ensure_progress_logger(spark).wait_terminated(str(query.runId))
        watch.stop.set()
        watch.join()
        kinesis_client(REGION, ENDPOINT).delete_stream(StreamName=stream)
    rows = _delta_rows(spark, cfg.paths.resolve("enriched"))
    metrics: list[dict[str, Any]] = list(writer.metrics)
    batches = [m for m in metrics[warm_batches:] if int(m["records_in"]) > 0]
    return {
        "trigger": cfg.stream.trigger_interval,
        "source_kind": cfg.source.kind,
        "shards": shards,
        "rate_flows_per_s": rate,
        "seconds": seconds,
        "warmup_flows_not_measured": warm_lines,
        "flows_sent": producer.lines,
        "drained": drained,
        **_figures(rows, watch, producer.started),
        "batches": len(batches),
        "batch_duration_s": percentiles([float(m["duration_s"]) for m in batches]),
        "batch_records_in": percentiles([float(m["records_in"]) for m in batches]),
        "batch_phase_s_p50": _phase_medians(batches),
        "query_ms_p50": progress_ms(query),
        "flows_pending": sum(int(m["flows_pending"]) for m in metrics),
        "note": "kinesalite ApproximateArrivalTimestamp is millisecond-grained; Delta time is "
        "the commit timestamp of the version that added the row's file",
        "cores": os.cpu_count(),
    }


def _phase_medians(batches: list[dict[str, Any]]) -> dict[str, float]:
    """Median seconds per batch phase (``phase_s``; a phase a batch skipped counts as 0)."""
    phases = [dict(m.get("phase_s") or {}) for m in batches]
    names = sorted({name for p in phases for name in p})
    return {n: round(float(np.median([float(p.get(n, 0.0)) for p in phases])), 3) for n in names}


def _cumsum(envelopes: list[Envelope]) -> list[int]:
    return np.cumsum([e.n_events for e in envelopes]).tolist()


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the benchmark, write the JSON, print one line; returns the figures."""
    args = load_args("python -m bench.latency", __doc__, RESULTS, argv)
    result = run_bench(
        "latency", args.out, lambda spark, work: measure(
            spark, work, args.rate, args.seconds, args.shards
        ),
    )  # fmt: skip
    d, k, b = result["delta_latency_s"], result["kafka_latency_s"], result["batch_duration_s"]
    print(f"bench.latency: {result['flows_measured']} flows at {args.rate:.0f}/s, trigger "
          f"{result['trigger']}: Delta p50/p95/p99 {d['p50']}/{d['p95']}/{d['p99']} s, Kafka "
          f"{k['p50']}/{k['p95']}/{k['p99']} s (target p95 <= 3 s); {result['batches']} "
          f"batches, median {b['p50']} s")  # fmt: skip
    return result


if __name__ == "__main__":
    main()
