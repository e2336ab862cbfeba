"""Exactly once across crashes: the streaming job (a separate driver process) is killed with
SIGKILL three times while it works through a Kinesis stream - first while a batch is planned
and its records read but not committed, then at random points - restarted each time from its
checkpoint, and finally drained with another admission limit, after more records arrived.
Every flow must be in Delta exactly once and published to Kafka exactly once
(read_committed)."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import yaml
from _flowkit import (
    KAFKA,
    KINESIS,
    T0,
    counted_by_minute_and_apps,
    create_stream,
    envelope,
    flow_line,
    flows_by_minute_and_apps,
    put,
    rollup_messages,
    write_snapshot,
)

from spark_jobs import console
from spark_jobs.jobs import refresh_ownership

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
KILLS = 3
ENVELOPES, LINES_PER_ENVELOPE = 24, 20


def _config(tmp_path: Path, stream: str, run: str, trigger: str, max_records: int) -> Path:
    doc = {
        "extends": str(ROOT / "conf" / "base.yaml"),
        "spark": {"master": "local[2]", "shuffle_partitions": 2,
                  "jars_dir": str(ROOT / ".jars" / "spark")},
        "source": {"stream_names": [stream], "endpoint_url": KINESIS,
                   "max_records_per_batch": max_records},
        "paths": {"root": str(tmp_path / "data")},
        "kafka": {"bootstrap_servers": KAFKA, "topic": f"it.crash.{run}"},
        "stream": {"trigger": trigger, "trigger_interval": "500 milliseconds",
                   "query_name": f"crash-{run}"},
    }  # fmt: skip
    path = tmp_path / f"{trigger}.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def _env(metrics: Path) -> dict[str, str]:
    """The drivers' environment: their batch metrics appended to ``metrics`` (JSON lines)."""
    return {**os.environ, console.METRICS_ENV: str(metrics)}


def _start(conf: Path, log: Path, metrics: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "spark_jobs.cli", "stream", "--conf", str(conf)],
        cwd=ROOT, stdout=log.open("ab"), stderr=subprocess.STDOUT, start_new_session=True,
        env=_env(metrics),
    )  # fmt: skip


def _batches_done(metrics: Path) -> int:
    return metrics.read_text(errors="replace").count('"dredge_batch"') if metrics.exists() else 0


def _in_flight(checkpoint: Path) -> int | None:
    """The batch planned but not committed whose records an executor has read (the source
    recorded where it stopped, under the plan id of the batch's end offset), if any."""
    planned = {int(p.name) for p in (checkpoint / "offsets").glob("[0-9]*")}
    committed = {int(p.name) for p in (checkpoint / "commits").glob("[0-9]*")}
    open_batches = planned - committed
    if not open_batches:
        return None
    batch = max(open_batches)
    offset = json.loads((checkpoint / "offsets" / str(batch)).read_text().splitlines()[-1])
    plan = (json.loads(offset) if isinstance(offset, str) else offset)["plan"]
    read = Path(f"{checkpoint}-source-meta").glob(f"{plan}/*/*.json")
    return batch if any(read) else None


def _batch_ids(out: str, key: str) -> set[int]:
    """The batch ids of the ``{key: {...}}`` JSON lines of a driver's metrics."""
    lines = (json.loads(x) for x in out.splitlines() if x.startswith(f'{{"{key}"'))
    return {line[key]["batch_id"] for line in lines}


def _lags(out: str) -> dict[int, int | None]:
    """The source lag of each batch's progress in a driver's metrics."""
    key = console.PROGRESS_KEY
    lines = (json.loads(x) for x in out.splitlines() if x.startswith(f'{{"{key}"'))
    return {line[key]["batch_id"]: line[key]["source_lag_ms"] for line in lines}


# Three driver starts and a drain: longer than the suite's default timeout on a busy machine.
@pytest.mark.timeout(1500)
def test_sigkill_three_times_then_drain_exactly_once(spark, tmp_path):
    run = uuid.uuid4().hex[:8]
    stream = create_stream(2)
    lines = [
        flow_line("192.0.2.10", "192.0.2.20", T0 + 60 + i, nbytes=1000 + i)
        for i in range(ENVELOPES * LINES_PER_ENVELOPE)
    ]
    put(stream, [envelope(lines[i : i + LINES_PER_ENVELOPE])
                 for i in range(0, len(lines), LINES_PER_ENVELOPE)])  # fmt: skip
    live = _config(tmp_path, stream, run, "processing_time", max_records=4)
    # a restart may change the admission limit: a replayed batch still reads what it planned
    drain = _config(tmp_path, stream, run, "available_now", max_records=1000)
    snap = write_snapshot(tmp_path, "s0", "2026-01-01T00:00:00Z",
                          [("192.0.2.10", "api", "us-east-1", "us-east-1a"),
                           ("192.0.2.20", "db", "us-east-1", "us-east-1b")])  # fmt: skip
    later = write_snapshot(tmp_path, "s1", "2026-01-01T02:00:00Z",
                           [("192.0.2.10", "api", "us-east-1", "us-east-1a"),
                            ("192.0.2.20", "db", "us-east-1", "us-east-1b")])  # fmt: skip
    vpcs = tmp_path / "labels.json"
    vpcs.write_text(
        json.dumps({"vpcs": [{"vpc_id": "vpc-1", "region": "us-east-1", "cidr": "192.0.2.0/24"}]})
    )
    # the ownership tables, in this process (the refresh job's own tests cover its CLI): the
    # drivers under test are the stream's
    refresh = ["--conf", str(live), "--snapshot", snap, "--snapshot", later,
               "--vpc-cidrs", str(vpcs)]  # fmt: skip
    assert refresh_ownership.main(refresh) == refresh_ownership.EXIT_OK

    rnd = random.Random(run)
    log, metrics = tmp_path / "driver.log", tmp_path / "metrics.jsonl"
    checkpoint = tmp_path / "data" / "checkpoints" / f"crash-{run}"
    killed_in_flight = []  # batches planned and read, not committed, when a kill landed
    for kill in range(KILLS):
        before = _batches_done(metrics)
        proc = _start(live, log, metrics)
        # wait until this attempt completes a batch (bounded), then kill: the first time as
        # soon as a further batch has read its records, later at a random moment
        deadline = time.monotonic() + 300
        while _batches_done(metrics) <= before and time.monotonic() < deadline:
            if proc.poll() is not None:
                pytest.fail(f"driver exited with {proc.returncode} before kill {kill}")
            time.sleep(0.2)
        if kill == 0:
            deadline = time.monotonic() + 60
            while _in_flight(checkpoint) is None and time.monotonic() < deadline:
                time.sleep(0.02)
        else:
            time.sleep(rnd.uniform(0.0, 4.0))
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
        if (batch := _in_flight(checkpoint)) is not None:
            killed_in_flight.append(batch)
    assert killed_in_flight, "no kill landed between a batch's read and its commit"
    late = [flow_line("192.0.2.10", "192.0.2.20", T0 + 60 + len(lines) + i, nbytes=1000 + len(lines) + i)
            for i in range(LINES_PER_ENVELOPE)]  # fmt: skip
    put(stream, [envelope(late)])  # arrives while no driver runs: the drain reads it
    lines += late
    done = subprocess.run(
        [sys.executable, "-m", "spark_jobs.cli", "stream", "--conf", str(drain)],
        cwd=ROOT, timeout=900, capture_output=True, text=True, env=_env(tmp_path / "drain.jsonl"),
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    # the drain's driver exits only after its listener printed every batch's progress
    drained = (tmp_path / "drain.jsonl").read_text()
    assert _batch_ids(drained, "dredge_progress") == _batch_ids(drained, "dredge_batch") != set()
    # ... and the console got one readable line per batch, with the source lag of its progress
    # (none for the batch replayed after the last kill: Spark reads its offsets back from the
    # checkpoint instead of asking the source)
    shown_lines = [x for x in done.stdout.splitlines() if x.startswith("batch ")]
    printed = {int(x.split(":")[0].split()[1]): x for x in shown_lines}
    lags = _lags(drained)
    assert len(shown_lines) == len(printed) and sorted(printed) == sorted(lags)
    for batch_id, lag in lags.items():
        shown = "" if lag is None else f", source lag {console.format_ms(lag)}"
        assert printed[batch_id].endswith(f" quarantined{shown}"), printed[batch_id]
    assert "StreamingQueryListenerWrapper threw" not in done.stderr

    enriched = spark.read.format("delta").load(str(tmp_path / "data" / "enriched"))
    rows = enriched.select("flow_id", "bytes", "src_app", "dst_app").collect()
    assert len(rows) == len(lines)
    assert len({r.flow_id for r in rows}) == len(lines)  # no duplicate
    assert sorted(r.bytes for r in rows) == [1000 + i for i in range(len(lines))]  # no loss
    assert {(r.src_app, r.dst_app) for r in rows} == {("api", "db")}
    messages = rollup_messages(spark, f"it.crash.{run}")
    # a batch sends one message per minute and dimensions: a pair seen twice was published
    # twice; a lost or doubled batch also shows in the flows and bytes per minute
    sent = [(key, m["batch"]) for key, m in messages]
    duplicates = len(sent) - len(set(sent))
    print(f"crash test: {KILLS} kills ({len(killed_in_flight)} between a batch's read and its "
          f"commit), {len(rows)} flows in Delta, {len(messages)} Kafka messages, "
          f"{duplicates} duplicates")  # fmt: skip
    assert duplicates == 0
    assert flows_by_minute_and_apps(messages) == counted_by_minute_and_apps(enriched)
    assert sum(m["flows"] for _, m in messages) == len(lines)
