"""File outputs per generated chunk: S3-style flow-log files and the flow ground truth."""

from __future__ import annotations

import gzip
import hashlib
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from spark_jobs.sim.formats import header
from spark_jobs.sim.geo import ACCOUNTS, REGIONS
from spark_jobs.sim.records import STATUS_OK, Records
from spark_jobs.sim.world import World

FILE_SLOT_S = 300  # AWS publishes flow-log files to S3 about every 5 minutes
TRUTH_ROWS_PER_FILE = 5_000_000
_ACTION = pa.array(["ACCEPT", "REJECT"])
_STATUS = pa.array(["OK", "NODATA", "SKIPDATA"])
_DIRECTION = pa.array(["ingress", "egress"])
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

    def write(self, chunk: int, world: World, recs: Records, lines: pa.Array,
              delivery: np.ndarray) -> None:  # fmt: skip
        """Write the lines of one chunk, grouped by region and delivery slot."""
        if len(lines) == 0:
            return
        slot = delivery // FILE_SLOT_S
        key = world.region[recs["eni"]] * (1 << 40) + slot
        order = np.argsort(key, kind="stable")
        keys, starts = np.unique(key[order], return_index=True)
        bounds = [*starts.tolist(), len(order)]
        ordered = lines.take(order)
        for g, k in enumerate(keys.tolist()):
            region, slot_t = k >> 40, (k & ((1 << 40) - 1)) * FILE_SLOT_S
            part = ordered.slice(bounds[g], bounds[g + 1] - bounds[g])
            offsets = pa.array([0, len(part)], pa.int32())
            body = pc.binary_join(pa.ListArray.from_arrays(offsets, part), "\n")[0].as_py()
            self._write_file(chunk, region, slot_t, f"{self.header}\n{body}\n")

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


# low-cardinality columns; dictionary-encoding the unique lines would only cost time
_DICT_COLUMNS = [f.name for f in TRUTH_SCHEMA if f.name not in ("line", "start", "end", "srcport",
                                                                "delivered_at")]  # fmt: skip


class TruthWriter:
    """Parquet ground truth, one row per emitted line, under ``truth/flows/part-NNNNN.parquet``."""

    def __init__(self, out: Path, world: World) -> None:
        self.folder = out / "truth" / "flows"
        self.folder.mkdir(parents=True, exist_ok=True)
        self.world = world
        self._writer: pq.ParquetWriter | None = None
        self._rows_in_file = 0
        self._files = 0
        self.rows = 0
        self._addr = pa.array([*world.ep_ip4.tolist(), *world.ep_ip6.tolist()], pa.string())
        self._side = {
            f: pa.array(getattr(world, a).tolist(), pa.string()) for f, a in _SIDE_ATTR.items()
        }
        self._eni = pa.array(world.eni.tolist(), pa.string())

    def write(
        self, recs: Records, lines: pa.Array, reasons: np.ndarray, delivery: np.ndarray
    ) -> None:
        """Append the truth of one chunk (a row group); owners are null for NODATA/SKIPDATA."""
        if len(lines) == 0:
            return
        w, eni = self.world, recs["eni"]
        no_data = recs["status"] != STATUS_OK
        cols: dict[str, pa.Array] = {
            "line": lines,
            "malformed_reason": pa.array(reasons, pa.string()),
            "interface_id": self._eni.take(eni),
            "account_id": self._side["account_id"].take(eni),
            "region": self._side["region"].take(eni),
            "flow_direction": _DIRECTION.take(recs["direction"]),
            "start": pa.array(recs["start"], pa.int64()),
            "end": pa.array(recs["end"], pa.int64()),
            "log_status": _STATUS.take(recs["status"]),
            "delivered_at": pa.array(delivery, pa.int64()),
            "action": _ACTION.take(pa.array(recs["action"], mask=no_data)),
        }
        v6 = recs["is_v6"].astype(np.int64) * w.n_endpoints
        for side in ("src", "dst"):
            ep = pa.array(recs[side], mask=no_data)
            cols[f"{side}addr"] = self._addr.take(pa.array(recs[side] + v6, mask=no_data))
            for f in _SIDE_FIELDS:
                cols[f"{side}_{f}"] = self._side[f].take(ep)
        for c in ("srcport", "dstport", "protocol"):
            cols[c] = pa.array(recs[c].astype(np.int32), pa.int32(), mask=no_data)
        table = pa.table([cols[f.name] for f in TRUTH_SCHEMA], schema=TRUTH_SCHEMA)
        self._writer_for(len(lines)).write_table(table)
        self.rows += len(lines)

    def _writer_for(self, n: int) -> pq.ParquetWriter:
        if self._writer is not None and self._rows_in_file + n > TRUTH_ROWS_PER_FILE:
            self._writer.close()
            self._writer = None
        if self._writer is None:
            path = self.folder / f"part-{self._files:05d}.parquet"
            self._writer = pq.ParquetWriter(
                path, TRUTH_SCHEMA, compression="snappy", use_dictionary=_DICT_COLUMNS
            )
            self._files += 1
            self._rows_in_file = 0
        self._rows_in_file += n
        return self._writer

    def close(self) -> None:
        """Finish the open file."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None
