"""Ownership truth, inventory snapshots and the static documents (ip-ranges, VPC CIDRs).

The snapshot observed at ``t`` lists exactly the ownership intervals with
``valid_from <= t < valid_to``, so snapshots and the flow truth agree by construction.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from spark_jobs.sim.geo import ACCOUNTS, AZ_LETTERS, REGIONS, ip_ranges_doc, vpcs_doc
from spark_jobs.sim.world import World
from spark_jobs.transforms.ip import ip_key_py

SNAPSHOT_FIELDS: tuple[str, ...] = (
    "observed_at", "account_id", "region", "ip", "app", "cluster", "az", "vpc_id", "subnet_id",
    "resource_id", "kind", "eni_id", "eni_attached_at",
)  # fmt: skip
SOURCE = "simulator"


def iso(t: int) -> str:
    """Unix seconds -> ``2025-01-01T00:00:00Z``."""
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Interval:
    """One address held by one fleet incarnation over [valid_from, valid_to)."""

    ip: str
    fleet_idx: int
    valid_from: int
    valid_to: int | None  # None: still held at the end of the horizon


def ownership_intervals(world: World) -> list[Interval]:
    """IPv4 and IPv6 intervals of every incarnation launched before the horizon ends."""
    t1 = world.horizon.t1
    out: list[Interval] = []
    for k in range(world.n_fleet):
        launch, term = int(world.launch[k]), int(world.terminate[k])
        if launch >= t1:
            continue
        valid_to = term if term <= t1 else None
        for ip in (world.ep_ip4[k], world.ep_ip6[k]):
            if ip is not None:
                out.append(Interval(ip, k, launch, valid_to))
    return out


def _row(world: World, iv: Interval) -> dict[str, str]:
    k = iv.fleet_idx
    return {
        "account_id": world.ep_account[k],
        "region": world.ep_region[k],
        "ip": iv.ip,
        "app": world.ep_app[k],
        "cluster": world.ep_cluster[k],
        "az": REGIONS[int(world.region[k])] + AZ_LETTERS[int(world.az[k])],
        "vpc_id": world.vpc_id[k],
        "subnet_id": world.subnet_id[k],
        "resource_id": world.ep_resource[k],
        "kind": world.ep_kind[k],
        "eni_id": world.eni[k],
        # every simulated ENI is its resource's own, created with it and holding its
        # addresses until it terminates
        "eni_attached_at": iso(int(world.launch[k])),
    }


def write_ownership(path: Path, world: World, intervals: list[Interval]) -> None:
    """Parquet with the columns of the ownership Delta table (timestamps in UTC)."""
    rows = [_row(world, iv) for iv in intervals]
    cols: dict[str, list[object]] = {f: [r[f] for r in rows] for f in SNAPSHOT_FIELDS[1:]}
    cols["ip_key"] = [ip_key_py(iv.ip) for iv in intervals]
    cols["source"] = [SOURCE] * len(rows)
    ts = pa.timestamp("us", tz="UTC")
    order = ["ip", "ip_key", "app", "cluster", "account_id", "region", "az", "vpc_id",
             "subnet_id", "resource_id", "kind", "eni_id", "source"]  # fmt: skip
    arrays = [pa.array(cols[c], pa.string()) for c in order]
    launched = [int(world.launch[iv.fleet_idx]) * 1_000_000 for iv in intervals]
    arrays.append(pa.array(launched, pa.int64()).cast(ts))
    arrays.append(pa.array([iv.valid_from * 1_000_000 for iv in intervals], pa.int64()).cast(ts))
    valid_to = [None if iv.valid_to is None else iv.valid_to * 1_000_000 for iv in intervals]
    arrays.append(pa.array(valid_to, pa.int64()).cast(ts))
    path.parent.mkdir(parents=True, exist_ok=True)
    names = [*order, "eni_attached_at", "valid_from", "valid_to"]
    pq.write_table(pa.table(arrays, names=names), path)


def write_snapshots(out: Path, world: World, intervals: list[Interval], every_s: int,
                    lag_s: int) -> int:  # fmt: skip
    """JSONL snapshots every ``every_s`` seconds of the horizon plus ``_manifest.jsonl``.

    Each file declares all three (account_id, region) scopes with ``scope_only`` lines, so an
    address absent from it is closed at ``observed_at``. The manifest gives each file's
    ``available_at`` = ``observed_at`` + ``lag_s``: when a replay should apply it.
    """
    folder = out / "inventory"
    folder.mkdir(parents=True, exist_ok=True)
    frm = np.array([iv.valid_from for iv in intervals], dtype=np.int64)
    to = np.array([iv.valid_to if iv.valid_to is not None else 2**62 for iv in intervals])
    rows = [_row(world, iv) for iv in intervals]
    manifest: list[str] = []
    h = world.horizon
    times = range(h.t0, h.t1 + 1, every_s)
    for t in times:
        observed = iso(t)
        lines = [
            json.dumps({"observed_at": observed, "account_id": a, "region": r, "ip": None,
                        "app": None, "cluster": None, "az": None, "vpc_id": None,
                        "subnet_id": None, "resource_id": None, "kind": None, "eni_id": None,
                        "eni_attached_at": None, "scope_only": True})
            for a, r in zip(ACCOUNTS, REGIONS, strict=True)
        ]  # fmt: skip
        for i in np.flatnonzero((frm <= t) & (t < to)).tolist():
            lines.append(json.dumps({"observed_at": observed, **rows[i]}))
        name = f"snapshot-{datetime.fromtimestamp(t, UTC).strftime('%Y%m%dT%H%M%SZ')}.jsonl"
        (folder / name).write_text("\n".join(lines) + "\n")
        entry = {"path": name, "observed_at": observed, "available_at": iso(t + lag_s),
                 "lines": len(lines)}  # fmt: skip
        manifest.append(json.dumps(entry))
    (folder / "_manifest.jsonl").write_text("\n".join(manifest) + "\n")
    return len(times)


def write_static(out: Path, world: World, flow_log_ids: list[str]) -> None:
    """``ip-ranges.json``, ``vpcs.json`` and ``flowlogs.json`` (format and flow-log ids)."""
    out.mkdir(parents=True, exist_ok=True)
    created = datetime.fromtimestamp(world.horizon.t0, UTC)
    (out / "ip-ranges.json").write_text(json.dumps(ip_ranges_doc(created), indent=1))
    (out / "vpcs.json").write_text(json.dumps(vpcs_doc(world.geo), indent=1))
    apps = [{"app": a.name, "regions": [REGIONS[r] for r in a.regions], "platform": a.platform,
             "port": a.port} for a in world.apps]  # fmt: skip
    (out / "apps.json").write_text(json.dumps({"apps": apps, "flow_log_ids": flow_log_ids},
                                              indent=1))  # fmt: skip
