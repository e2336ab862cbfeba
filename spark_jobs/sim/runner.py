"""Runs a simulation: world -> static docs, ownership truth, snapshots -> per-minute chunks.

Each simulated minute is generated, formatted and written on its own (files, truth, envelopes),
so memory stays bounded by one minute of flows plus the envelopes awaiting delivery.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from spark_jobs.sim.emit import FlowFileWriter, TruthWriter
from spark_jobs.sim.envelopes import DeliveryBuffer, EnvelopeBuilder, EnvelopeSink
from spark_jobs.sim.fleet import Horizon
from spark_jobs.sim.formats import LineFormatter, corrupt
from spark_jobs.sim.geo import REGIONS, hex_id
from spark_jobs.sim.inventory import (
    ownership_intervals,
    write_ownership,
    write_snapshots,
    write_static,
)
from spark_jobs.sim.records import STATUS_OK, delivery_times
from spark_jobs.sim.traffic import Traffic
from spark_jobs.sim.world import build_world

DEFAULT_START = int(datetime(2025, 1, 1, tzinfo=UTC).timestamp())
CONTROL_EVERY_S = 600


@dataclass(frozen=True)
class SimConfig:
    """What to simulate and what to write."""

    out: Path
    minutes: int = 10
    apps: int = 30
    seed: int = 1
    flows_per_minute: int = 10_000  # flow-log lines per simulated minute (approximately)
    start: int = DEFAULT_START  # unix seconds, start of the horizon
    fmt: str = "v2"  # v2 | v5
    window: str = "mixed"  # 60 | 600 | mixed (eu-west-1 uses 10-minute windows)
    malformed_share: float = 0.01
    write_files: bool = True
    write_truth: bool = True
    snapshot_every_s: int = 60
    snapshot_lag_s: int = 0
    churn: float = 1.0
    gzip_level: int = 1  # zlib level; 1 keeps files 200k+ lines/s

    def __post_init__(self) -> None:
        if self.minutes < 1 or self.apps < 2 or self.flows_per_minute < 1:
            raise ValueError("minutes >= 1, apps >= 2 and flows_per_minute >= 1 are required")
        if not 0.0 <= self.malformed_share < 1.0:
            raise ValueError("malformed_share must be in [0, 1)")
        if self.snapshot_every_s < 1 or self.snapshot_lag_s < 0:
            raise ValueError("snapshot_every_s >= 1 and snapshot_lag_s >= 0 are required")


@dataclass
class Summary:
    """Counts of what a run wrote."""

    flows: int = 0  # lines, all statuses
    ok: int = 0
    nodata_or_skip: int = 0
    malformed: int = 0
    files: int = 0
    envelopes: int = 0
    snapshots: int = 0
    intervals: int = 0
    reused_ips: int = 0
    seconds: float = 0.0

    def line(self) -> str:
        """One-line human summary."""
        rate = self.flows / self.seconds if self.seconds else 0.0
        return (
            f"flows={self.flows} (ok={self.ok} nodata/skipdata={self.nodata_or_skip} "
            f"malformed={self.malformed}) files={self.files} envelopes={self.envelopes} "
            f"snapshots={self.snapshots} ownership_intervals={self.intervals} "
            f"reused_ips={self.reused_ips} in {self.seconds:.1f}s ({rate:,.0f} lines/s)"
        )


def run(cfg: SimConfig, sink: EnvelopeSink | None = None) -> Summary:
    """Simulate ``cfg.minutes`` minutes and write every output; returns the counts."""
    began = time.perf_counter()
    horizon = Horizon(cfg.start, cfg.start + 60 * cfg.minutes, cfg.churn)
    world = build_world(cfg.seed, cfg.apps, horizon, cfg.window)
    id_rng = np.random.default_rng([cfg.seed, 3])
    flow_log_ids = [hex_id(id_rng, "fl") for _ in REGIONS]
    write_static(cfg.out, world, flow_log_ids)
    intervals = ownership_intervals(world)
    summary = Summary(intervals=len(intervals))
    summary.reused_ips = len(intervals) - len({iv.ip for iv in intervals})
    if cfg.write_truth:
        write_ownership(cfg.out / "truth" / "ownership.parquet", world, intervals)
    summary.snapshots = write_snapshots(
        cfg.out, world, intervals, cfg.snapshot_every_s, cfg.snapshot_lag_s
    )
    traffic = Traffic(world, cfg.seed, cfg.flows_per_minute)
    formatter = LineFormatter(world, cfg.fmt)
    files = (
        FlowFileWriter(cfg.out, cfg.fmt, flow_log_ids, cfg.gzip_level) if cfg.write_files else None
    )
    truth = TruthWriter(cfg.out, world) if cfg.write_truth else None
    builder = EnvelopeBuilder(world, cfg.gzip_level)
    buffer = DeliveryBuffer()
    for m in range(cfg.minutes):
        recs = traffic.minute(m)
        rng = np.random.default_rng([cfg.seed, 4, m])
        lines, reasons = corrupt(rng, formatter.format(recs), recs, cfg.malformed_share)
        delivery = delivery_times(world, cfg.seed, recs)
        summary.flows += len(lines)
        n_ok = int((recs["status"] == STATUS_OK).sum())
        summary.ok += n_ok
        summary.nodata_or_skip += len(lines) - n_ok
        summary.malformed += int(np.count_nonzero(reasons != None))  # noqa: E711
        if files is not None:
            files.write(m, world, recs, lines, delivery)
        if truth is not None:
            truth.write(recs, lines, reasons, delivery)
        if sink is not None:
            t_m = horizon.t0 + 60 * m
            if (t_m - horizon.t0) % CONTROL_EVERY_S == 0:
                buffer.push([builder.control(t_m)])
            buffer.push(builder.build(recs, lines, delivery))
            ready = buffer.release(t_m + 60)
            sink.put(ready)
            summary.envelopes += len(ready)
    if sink is not None:
        rest = buffer.release()
        sink.put(rest)
        sink.close()
        summary.envelopes += len(rest)
    if truth is not None:
        truth.close()
    summary.files = files.files_written if files is not None else 0
    summary.seconds = time.perf_counter() - began
    return summary
