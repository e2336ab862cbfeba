"""File outputs per generated chunk: S3-style flow-log files and the flow ground truth."""

from __future__ import annotations

import gzip
import hashlib
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from spark_jobs.sim.formats import header
from spark_jobs.sim.geo import ACCOUNTS, REGIONS
from spark_jobs.sim.records import EGRESS, STATUS_OK, Records
from spark_jobs.sim.world import World

FILE_SLOT_S = 300  # AWS publishes flow-log files to S3 about every 5 minutes
TRUTH_ROWS_PER_FILE = 5_000_000
_ACTION = np.array(["ACCEPT", "REJECT"], dtype=object)
_STATUS = np.array(["OK", "NODATA", "SKIPDATA"], dtype=object)
_SIDE_ATTR = {
    "app": "ep_app", "cluster": "ep_cluster", "account_id": "ep_account", "region": "ep_region",
    "az": "ep_az", "kind": "ep_kind", "resource_id": "ep_resource",
}  # fmt: skip
_SIDE_FIELDS = tuple(_SIDE_ATTR)


def _utc(t: int) -> datetime:
    return datetime.fromtimestamp(t, UTC)


def gzip_bytes(data: bytes, level: int) -> bytes:
    """Deterministic gzip (no name, mtime 0)."""
    return gzip.compress(data, compresslevel=level, mtime=0)


class FlowFileWriter:
    """``flowlogs/AWSLogs/<account>/vpcflowlogs/<region>/YYYY/MM/DD/<name>.log.gz`` files.

    One file per (region, 5-minute delivery slot) per chunk, named like AWS does with the
    slot time; its first line is the header of field names.
    """

    def __init__(self, out: Path, fmt: str, flow_log_ids: list[str], level: int = 6) -> None:
        self.root = out / "flowlogs" / "AWSLogs"
        self.header = header(fmt)
        self.flow_log_ids = flow_log_ids
        self.level = level
        self.files_written = 0

    def write(self, chunk: int, world: World, recs: Records, lines: list[str],
              delivery: np.ndarray) -> None:  # fmt: skip
        """Write the lines of one chunk, grouped by region and delivery slot."""
        if not lines:
            return
        slot = delivery // FILE_SLOT_S
        key = world.region[recs["eni"]] * (1 << 40) + slot
        order = np.argsort(key, kind="stable")
        keys, starts = np.unique(key[order], return_index=True)
        bounds = [*starts.tolist(), len(order)]
        text = np.asarray(lines, dtype=object)
        for g, k in enumerate(keys.tolist()):
            region, slot_t = k >> 40, (k & ((1 << 40) - 1)) * FILE_SLOT_S
            body = "\n".join([self.header, *text[order[bounds[g] : bounds[g + 1]]].tolist()])
            self._write_file(chunk, region, slot_t, body + "\n")

    def _write_file(self, chunk: int, region: int, slot_t: int, body: str) -> None:
        account, name = ACCOUNTS[region], REGIONS[region]
        when = _utc(slot_t)
        folder = self.root / account / "vpcflowlogs" / name / when.strftime("%Y/%m/%d")
        folder.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha1(f"{chunk}/{region}/{slot_t}".encode()).hexdigest()[:8]
        stamp = when.strftime("%Y%m%dT%H%MZ")
        fname = f"{account}_vpcflowlogs_{name}_{self.flow_log_ids[region]}_{stamp}_{digest}.log.gz"
        (folder / fname).write_bytes(gzip_bytes(body.encode(), self.level))
        self.files_written += 1


TRUTH_SCHEMA = pa.schema(
    [
        ("line", pa.string()),
        ("malformed_reason", pa.string()),
        ("interface_id", pa.string()),
        ("account_id", pa.string()),
        ("region", pa.string()),
        ("flow_direction", pa.string()),
        ("srcaddr", pa.string()),
        ("dstaddr", pa.string()),
        ("srcport", pa.int32()),
        ("dstport", pa.int32()),
        ("protocol", pa.int32()),
        ("start", pa.int64()),
        ("end", pa.int64()),
        ("action", pa.string()),
        ("log_status", pa.string()),
        ("delivered_at", pa.int64()),
        *((f"{side}_{f}", pa.string()) for side in ("src", "dst") for f in _SIDE_FIELDS),
    ]
)


class TruthWriter:
    """Parquet ground truth, one row per emitted line, under ``truth/flows/part-NNNNN.parquet``."""

    def __init__(self, out: Path) -> None:
        self.folder = out / "truth" / "flows"
        self.folder.mkdir(parents=True, exist_ok=True)
        self._writer: pq.ParquetWriter | None = None
        self._rows_in_file = 0
        self._files = 0
        self.rows = 0

    def write(self, world: World, recs: Records, lines: list[str], reasons: np.ndarray,
              delivery: np.ndarray) -> None:  # fmt: skip
        """Append the truth of one chunk (a row group)."""
        if not lines:
            return
        eni, has = recs["eni"], recs["status"] == STATUS_OK
        cols: dict[str, pa.Array] = {
            "line": pa.array(lines, pa.string()),
            "malformed_reason": pa.array(reasons, pa.string()),
            "interface_id": pa.array(world.eni[eni], pa.string()),
            "account_id": pa.array(world.ep_account[eni], pa.string()),
            "region": pa.array(world.ep_region[eni], pa.string()),
            "flow_direction": pa.array(
                np.where(recs["direction"] == EGRESS, "egress", "ingress"), pa.string()
            ),
            "start": pa.array(recs["start"], pa.int64()),
            "end": pa.array(recs["end"], pa.int64()),
            "log_status": pa.array(_STATUS[recs["status"]], pa.string()),
            "delivered_at": pa.array(delivery, pa.int64()),
        }
        for side in ("src", "dst"):
            ep = np.maximum(recs[side], 0)
            ip = np.where(recs["is_v6"], world.ep_ip6[ep], world.ep_ip4[ep])
            cols[f"{side}addr"] = pa.array(ip, pa.string(), mask=~has)
            for f in _SIDE_FIELDS:
                values = getattr(world, _SIDE_ATTR[f])[ep]
                cols[f"{side}_{f}"] = pa.array(values, pa.string(), mask=~has)
        for c in ("srcport", "dstport", "protocol"):
            cols[c] = pa.array(recs[c].astype(np.int32), pa.int32(), mask=~has)
        cols["action"] = pa.array(_ACTION[recs["action"]], pa.string(), mask=~has)
        table = pa.table([cols[f.name] for f in TRUTH_SCHEMA], schema=TRUTH_SCHEMA)
        self._writer_for(len(lines)).write_table(table)
        self.rows += len(lines)

    def _writer_for(self, n: int) -> pq.ParquetWriter:
        if self._writer is not None and self._rows_in_file + n > TRUTH_ROWS_PER_FILE:
            self._writer.close()
            self._writer = None
        if self._writer is None:
            path = self.folder / f"part-{self._files:05d}.parquet"
            self._writer = pq.ParquetWriter(path, TRUTH_SCHEMA, compression="snappy")
            self._files += 1
            self._rows_in_file = 0
        self._rows_in_file += n
        return self._writer

    def close(self) -> None:
        """Finish the open file."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None
