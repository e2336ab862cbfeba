"""Flow-log text: the v2 default format, a v5 custom format, and deliberately malformed lines."""

from __future__ import annotations

from typing import Any

import numpy as np

from spark_jobs.sim.records import EGRESS, STATUS_OK, Records, take
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
_STATUS = np.array(["OK", "NODATA", "SKIPDATA"], dtype=object)
_ACTION = np.array(["ACCEPT", "REJECT"], dtype=object)
_AWS, _INET = KINDS.index("aws_service"), KINDS.index("internet")
_TCP_FLAGS = np.array([2, 3, 18, 19, 27], dtype=np.int64)


def log_format(fmt: str) -> str:
    """The ``${field}`` format string AWS would be configured with."""
    return " ".join(f"${{{f}}}" for f in FORMATS[fmt])


def header(fmt: str) -> str:
    """First line of an S3 flow-log file: the field names."""
    return " ".join(FORMATS[fmt])


def _addr(world: World, ep: np.ndarray, is_v6: np.ndarray) -> list[Any]:
    return np.where(is_v6, world.ep_ip6[ep], world.ep_ip4[ep]).tolist()


def _data_lines(world: World, recs: Records, fmt: str) -> list[str]:
    """Lines of records with traffic (log-status OK)."""
    eni, is_v6 = recs["eni"], recs["is_v6"]
    cols: list[list[Any]] = [
        world.ep_account[eni].tolist(),
        world.eni[eni].tolist(),
        _addr(world, recs["src"], is_v6),
        _addr(world, recs["dst"], is_v6),
        *(recs[c].tolist() for c in ("srcport", "dstport", "protocol", "packets", "bytes")),
        recs["start"].tolist(),
        recs["end"].tolist(),
        _ACTION[recs["action"]].tolist(),
    ]
    template = "2 %s %s %s %s %d %d %d %d %d %d %d %s OK"
    if fmt == "v5":
        template = "5" + template[1:] + " %s %s %s %d %s %s %s %s %s - - %s %s %s %s"
        cols += _v5_columns(world, recs)
    return [template % row for row in zip(*cols, strict=True)]


def _v5_columns(world: World, recs: Records) -> list[list[Any]]:
    eni, is_v6 = recs["eni"], recs["is_v6"]
    flags = _TCP_FLAGS[(recs["srcport"] + recs["start"]) % len(_TCP_FLAGS)]
    flags = np.where(recs["protocol"] == 6, flags, 0)
    n_aws, n_inet = world.inet_start - world.aws_start, world.n_endpoints - world.inet_start
    dash = np.full(world.n_endpoints, "-", dtype=object)
    aws_service = dash.copy()
    aws_service[world.aws_start : world.inet_start] = world.aws_service
    ep_kind = np.concatenate([world.kind, np.full(n_aws, _AWS), np.full(n_inet, _INET)])
    pkt_dst = recs["pkt_dst"]
    dst_kind = ep_kind[pkt_dst]
    dst_region = world.region[np.minimum(pkt_dst, world.n_fleet - 1)]
    path = np.where(dst_kind == _INET, "8", np.where(dst_kind == _AWS, "7", "1")).astype(object)
    path[(dst_kind < _AWS) & (dst_region != world.region[eni])] = "5"
    is_egress = recs["direction"] == EGRESS
    path[~is_egress] = "-"
    return [
        world.vpc_id[eni].tolist(),
        world.subnet_id[eni].tolist(),
        world.instance_id[eni].tolist(),
        flags.tolist(),
        np.where(is_v6, "IPv6", "IPv4").tolist(),
        _addr(world, recs["pkt_src"], is_v6),
        _addr(world, pkt_dst, is_v6),
        world.ep_region[eni].tolist(),
        world.az_id[eni].tolist(),
        aws_service[recs["pkt_src"]].tolist(),
        aws_service[pkt_dst].tolist(),
        np.where(is_egress, "egress", "ingress").tolist(),
        path.tolist(),
    ]


def _no_data_lines(world: World, recs: Records, fmt: str) -> list[str]:
    """NODATA / SKIPDATA lines: only the ENI, the window and the status are known."""
    eni = recs["eni"]
    cols: list[list[Any]] = [
        world.ep_account[eni].tolist(),
        world.eni[eni].tolist(),
        recs["start"].tolist(),
        recs["end"].tolist(),
        _STATUS[recs["status"]].tolist(),
    ]
    template = "2 %s %s - - - - - - - %d %d - %s"
    if fmt == "v5":
        template = "5" + template[1:] + " %s %s %s - - - - %s %s - - - - - -"
        cols += [world.vpc_id[eni].tolist(), world.subnet_id[eni].tolist(),
                 world.instance_id[eni].tolist(), world.ep_region[eni].tolist(),
                 world.az_id[eni].tolist()]  # fmt: skip
    return [template % row for row in zip(*cols, strict=True)]


def format_lines(world: World, recs: Records, fmt: str) -> list[str]:
    """One flow-log line per record, fields separated by single spaces."""
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {sorted(FORMATS)}")
    has_data = recs["status"] == STATUS_OK
    if has_data.all():
        return _data_lines(world, recs, fmt)
    out = np.empty(len(has_data), dtype=object)
    out[has_data] = _data_lines(world, take(recs, has_data), fmt)
    out[~has_data] = _no_data_lines(world, take(recs, ~has_data), fmt)
    lines: list[str] = out.tolist()
    return lines


def corrupt(rng: np.random.Generator, lines: list[str], recs: Records, share: float) -> np.ndarray:
    """Make about ``share`` of the data lines malformed in place; the reason per line or None."""
    reasons = np.full(len(lines), None, dtype=object)
    candidates = np.flatnonzero(recs["status"] == STATUS_OK)
    n_bad = int(rng.binomial(len(candidates), share)) if share > 0 else 0
    if n_bad == 0:
        return reasons
    picks = np.sort(rng.choice(candidates, size=n_bad, replace=False))
    kinds = rng.integers(len(MALFORMED_REASONS), size=n_bad)
    for i, k in zip(picks.tolist(), kinds.tolist(), strict=True):
        tokens = lines[i].split(" ")
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
        lines[i] = " ".join(tokens)
        reasons[i] = reason
    return reasons
