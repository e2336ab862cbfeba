"""Flow-log text: the v2 default format, a v5 custom format, and deliberately malformed lines.

Lines are built column-wise with Arrow compute kernels (take, cast, binary_join_element_wise),
which keeps text generation well above 200k lines/s on one core.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from spark_jobs.sim.records import EGRESS, STATUS_OK, Records
from spark_jobs.sim.world import KINDS, World

V2_FIELDS: tuple[str, ...] = (
    "version", "account-id", "interface-id", "srcaddr", "dstaddr", "srcport", "dstport",
    "protocol", "packets", "bytes", "start", "end", "action", "log-status",
)  # fmt: skip
V5_FIELDS: tuple[str, ...] = (
    *V2_FIELDS, "vpc-id", "subnet-id", "instance-id", "tcp-flags", "type", "pkt-srcaddr",
    "pkt-dstaddr", "region", "az-id", "sublocation-type", "sublocation-id",
    "pkt-src-aws-service", "pkt-dst-aws-service", "flow-direction", "traffic-path",
)  # fmt: skip
FORMATS: dict[str, tuple[str, ...]] = {"v2": V2_FIELDS, "v5": V5_FIELDS}
MALFORMED_REASONS: tuple[str, ...] = (
    "field_count", "bad_number", "bad_address", "port_range", "protocol_range", "start_after_end",
)  # fmt: skip
_STATUS = pa.array(["OK", "NODATA", "SKIPDATA"])
_ACTION = pa.array(["ACCEPT", "REJECT"])
_TYPE = pa.array(["IPv4", "IPv6"])
_DIRECTION = pa.array(["ingress", "egress"])
_PATH = pa.array(["1", "5", "7", "8"])
_AWS, _INET = KINDS.index("aws_service"), KINDS.index("internet")
_TCP_FLAGS = np.array([2, 3, 18, 19, 27], dtype=np.int64)


def log_format(fmt: str) -> str:
    """The ``${field}`` format string AWS would be configured with."""
    return " ".join(f"${{{f}}}" for f in FORMATS[fmt])


def header(fmt: str) -> str:
    """First line of an S3 flow-log file: the field names."""
    return " ".join(FORMATS[fmt])


def _text(values: Sequence[str | None]) -> pa.Array:
    return pa.array([v if v is not None else "-" for v in values], pa.string())


def _ints(values: np.ndarray) -> pa.Array:
    return pc.cast(pa.array(values, pa.int64()), pa.string())


class LineFormatter:
    """Renders record batches of one world as flow-log lines (a ``pa.StringArray``)."""

    def __init__(self, world: World, fmt: str) -> None:
        if fmt not in FORMATS:
            raise ValueError(f"format must be one of {sorted(FORMATS)}")
        self.world, self.fmt = world, fmt
        w, n_fleet = world, world.n_fleet
        # addresses: [ipv4 of every endpoint, ipv6 of every endpoint]
        self.addr = _text([*w.ep_ip4.tolist(), *w.ep_ip6.tolist()])
        self.prefix = _text(
            [f"{a} {e}" for a, e in zip(w.ep_account[:n_fleet], w.eni, strict=True)]
        )
        self.vpc_subnet_instance = _text(
            [f"{v} {s} {i}" for v, s, i in zip(w.vpc_id, w.subnet_id, w.instance_id, strict=True)]
        )
        self.region_az = _text(
            [f"{r} {a}" for r, a in zip(w.ep_region[:n_fleet], w.az_id, strict=True)]
        )
        service = ["-"] * w.n_endpoints
        service[w.aws_start : w.inet_start] = w.aws_service.tolist()
        self.service = _text(service)
        n_aws, n_inet = w.inet_start - w.aws_start, w.n_endpoints - w.inet_start
        self.ep_kind = np.concatenate([w.kind, np.full(n_aws, _AWS), np.full(n_inet, _INET)])

    def format(self, recs: Records) -> pa.Array:
        """One line per record, in record order."""
        has_data = recs["status"] == STATUS_OK
        is_all = bool(has_data.all())
        mask = pa.array(has_data)

        def data(col: pa.Array) -> pa.Array:
            return col if is_all else pc.if_else(mask, col, "-")

        eni, v6 = recs["eni"], recs["is_v6"].astype(np.int64) * self.world.n_endpoints
        cols: list[pa.Array | str] = [
            "5" if self.fmt == "v5" else "2",
            self.prefix.take(eni),
            data(self.addr.take(np.maximum(recs["src"], 0) + v6)),
            data(self.addr.take(np.maximum(recs["dst"], 0) + v6)),
            *(data(_ints(recs[c])) for c in ("srcport", "dstport", "protocol", "packets", "bytes")),
            _ints(recs["start"]),
            _ints(recs["end"]),
            data(_ACTION.take(recs["action"])),
            _STATUS.take(recs["status"]),
        ]
        if self.fmt == "v5":
            cols += [data(c) if i not in (0, 5, 6) else c for i, c in enumerate(self._v5(recs, v6))]
        return pc.binary_join_element_wise(*cols, " ")

    def _v5(self, recs: Records, v6: np.ndarray) -> list[pa.Array | str]:
        w, eni = self.world, recs["eni"]
        flags = _TCP_FLAGS[(recs["srcport"] + recs["start"]) % len(_TCP_FLAGS)]
        pkt_src, pkt_dst = np.maximum(recs["pkt_src"], 0), np.maximum(recs["pkt_dst"], 0)
        dst_kind = self.ep_kind[pkt_dst]
        is_cross = (dst_kind < _AWS) & (
            w.region[np.minimum(pkt_dst, w.n_fleet - 1)] != w.region[eni]
        )
        path = np.where(
            dst_kind == _INET, 3, np.where(dst_kind == _AWS, 2, is_cross.astype(np.int64))
        )
        is_egress = recs["direction"] == EGRESS
        return [
            self.vpc_subnet_instance.take(eni),
            _ints(np.where(recs["protocol"] == 6, flags, 0)),
            _TYPE.take(recs["is_v6"].astype(np.int64)),
            self.addr.take(pkt_src + v6),
            self.addr.take(pkt_dst + v6),
            self.region_az.take(eni),
            "- -",
            self.service.take(pkt_src),
            self.service.take(pkt_dst),
            _DIRECTION.take(recs["direction"]),
            pc.if_else(pa.array(is_egress), _PATH.take(path), "-"),
        ]


def corrupt(
    rng: np.random.Generator, lines: pa.Array, recs: Records, share: float
) -> tuple[pa.Array, np.ndarray]:
    """Make about ``share`` of the data lines malformed; the new lines and the reason per line."""
    reasons = np.full(len(lines), None, dtype=object)
    candidates = np.flatnonzero(recs["status"] == STATUS_OK)
    n_bad = int(rng.binomial(len(candidates), share)) if share > 0 else 0
    if n_bad == 0:
        return lines, reasons
    picks = np.sort(rng.choice(candidates, size=n_bad, replace=False))
    kinds = rng.integers(len(MALFORMED_REASONS), size=n_bad)
    bad: list[str] = []
    for i, k, line in zip(
        picks.tolist(), kinds.tolist(), lines.take(picks).to_pylist(), strict=True
    ):
        tokens = line.split(" ")
        reason = MALFORMED_REASONS[k]
        if reason == "field_count":
            tokens.pop()
        elif reason == "bad_number":
            tokens[8] += "x"
        elif reason == "bad_address":
            tokens[3] = "10.0.300.1"
        elif reason == "port_range":
            tokens[6] = str(65536 + i % 1000)
        elif reason == "protocol_range":
            tokens[7] = "300"
        else:
            tokens[10] = str(int(tokens[11]) + 30)
        bad.append(" ".join(tokens))
        reasons[i] = reason
    mask = np.zeros(len(lines), dtype=bool)
    mask[picks] = True
    return pc.replace_with_mask(lines, pa.array(mask), pa.array(bad, pa.string())), reasons
