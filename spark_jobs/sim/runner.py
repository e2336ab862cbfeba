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
from spark_jobs.sim.envelopes import DeliveryBuffer, Envelope, EnvelopeBuilder, EnvelopeSink
from spark_jobs.sim.fleet import Horizon
from spark_jobs.sim.formats import LineFormatter, corrupt
from spark_jobs.sim.geo import REGIONS, hex_id
from spark_jobs.sim.inventory import (
    ownership_intervals,
    write_ownership,
    write_snapshots,
    write_static,
)
from spark_jobs.sim.records import STATUS_OK, TICK_S, Records, delivery_times
from spark_jobs.sim.traffic import Traffic
from spark_jobs.sim.world import World, build_world

DEFAULT_START = int(datetime(2025, 1, 1, tzinfo=UTC).timestamp())
CONTROL_EVERY_S = 600
CHUNK_LINES = 500_000  # a simulated minute with more lines is generated in parts


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


class _Outputs:
    """Formats each chunk once and hands it to every enabled output."""

    def __init__(self, cfg: SimConfig, world: World, flow_log_ids: list[str],
                 sink: EnvelopeSink | None, summary: Summary) -> None:  # fmt: skip
        self.cfg, self.world, self.sink, self.summary = cfg, world, sink, summary
        self.formatter = LineFormatter(world, cfg.fmt)
        self.files = (
            FlowFileWriter(cfg.out, cfg.fmt, flow_log_ids, cfg.gzip_level)
            if cfg.write_files
            else None
        )
        self.truth = TruthWriter(cfg.out, world) if cfg.write_truth else None
        self.builder = EnvelopeBuilder(world, cfg.gzip_level)
        self.buffer = DeliveryBuffer()
        self.next_control = world.horizon.t0

    def emit(self, chunk: int, recs: Records, t_next: int) -> None:
        """Write one chunk; envelopes delivered by ``t_next`` (no later chunk can precede
        them: every later record starts at or after ``t_next``) go to the sink."""
        cfg, summary = self.cfg, self.summary
        rng = np.random.default_rng([cfg.seed, 4, chunk])
        lines, reasons = corrupt(rng, self.formatter.format(recs), recs, cfg.malformed_share)
        delivery = delivery_times(self.world, cfg.seed, recs)
        n_ok = int((recs["status"] == STATUS_OK).sum())
        summary.flows += len(lines)
        summary.ok += n_ok
        summary.nodata_or_skip += len(lines) - n_ok
        summary.malformed += sum(r is not None for r in reasons.tolist())
        if self.files is not None:
            self.files.write(chunk, self.world, recs, lines, delivery)
        if self.truth is not None:
            self.truth.write(recs, lines, reasons, delivery)
        if self.sink is not None:
            while self.next_control < t_next:
                self.buffer.push([self.builder.control(self.next_control)])
                self.next_control += CONTROL_EVERY_S
            self.buffer.push(self.builder.build(recs, lines, delivery))
            self._send(self.buffer.release(t_next))

    def _send(self, envelopes: list[Envelope]) -> None:
        assert self.sink is not None
        self.sink.put(envelopes)
        self.summary.envelopes += len(envelopes)

    def close(self) -> None:
        """Deliver what is left and close the files."""
        if self.sink is not None:
            self._send(self.buffer.release())
            self.sink.close()
        if self.truth is not None:
            self.truth.close()
        self.summary.files = self.files.files_written if self.files is not None else 0


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
    out = _Outputs(cfg, world, flow_log_ids, sink, summary)
    traffic = Traffic(world, cfg.seed, cfg.flows_per_minute)
    parts = min(12, -(-cfg.flows_per_minute // CHUNK_LINES))
    for m in range(cfg.minutes):
        for part in range(parts):
            t_next = horizon.t0 + 60 * m + TICK_S * ((part + 1) * (60 // TICK_S) // parts)
            out.emit(m * parts + part, traffic.minute(m, part, parts), t_next)
    out.close()
    summary.seconds = time.perf_counter() - began
    return summary
