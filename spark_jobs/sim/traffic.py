"""The traffic matrix: conversations per 5-second tick, expanded into the records AWS logs.

Only resources alive for the whole tick take part, so the owner of every fleet address at a
record's ``start`` is the incarnation that produced it. Intra-fleet conversations are logged at
both ENIs (egress at the source, ingress at the destination, same fields); NAT conversations
give the three records AWS documents (instance egress, NAT ingress with the packet's real
destination, NAT egress); AWS-service calls and internet traffic give the fleet side only.
"""

from __future__ import annotations

import numpy as np

from spark_jobs.sim.records import (
    ACCEPT,
    EGRESS,
    INGRESS,
    REJECT,
    TICK_S,
    Records,
    clamp_end,
    concat_records,
    flow_shape,
    make_records,
    no_traffic,
)
from spark_jobs.sim.world import KINDS, World

# conversation kinds and their shares; records per conversation in RECORDS_PER
MIX: dict[str, float] = {
    "call": 0.55, "call_reject": 0.02, "elb_forward": 0.10, "aws": 0.12,
    "nat": 0.08, "elb_in": 0.08, "scan": 0.05,
}  # fmt: skip
RECORDS_PER: dict[str, int] = {
    "call": 2, "call_reject": 2, "elb_forward": 2, "aws": 1, "nat": 3, "elb_in": 1, "scan": 1,
}  # fmt: skip
_SCAN_PORTS = np.array([22, 23, 445, 3389])
_SERVER_KINDS = (KINDS.index("instance"), KINDS.index("task"))


class Traffic:
    """Generates the records of one simulated minute at a time (deterministic per minute)."""

    def __init__(self, world: World, seed: int, lines_per_minute: int) -> None:
        self.w = world
        self.seed = seed
        self.lines_per_minute = lines_per_minute
        per_conv = sum(MIX[k] * RECORDS_PER[k] for k in MIX)
        self.conv_per_minute = round(lines_per_minute / per_conv)
        apps = world.apps
        k = max(len(a.deps) for a in apps)
        self.deps = np.array([[a.deps[i % len(a.deps)] for i in range(k)] for a in apps])
        self.dep_regions = np.array(
            [[a.dep_regions[i % len(a.deps)] for i in range(k)] for a in apps]
        )
        self.zone_aware = np.array([a.is_zone_aware for a in apps])
        self.port = np.array([a.port for a in apps], dtype=np.int64)
        self.proto = np.array([a.protocol for a in apps], dtype=np.int64)
        nat = np.flatnonzero(world.kind == KINDS.index("nat_gateway"))
        self.nat_at = np.zeros(9, dtype=np.int64)
        self.nat_at[world.region[nat] * 3 + world.az[nat]] = nat
        self.n_aws_per_region = (world.inet_start - world.aws_start) // 3
        self.n_inet = world.n_endpoints - world.inet_start

    def minute(self, m: int, part: int = 0, parts: int = 1) -> Records:
        """Records whose flow starts in part ``part`` of ``parts`` of minute ``m``, by start.

        Splitting a minute keeps memory bounded at high rates; NODATA/SKIPDATA records of the
        minute come with part 0.
        """
        rng = np.random.default_rng([self.seed, 2, m, part])
        t_m = self.w.horizon.t0 + 60 * m
        n_ticks = 60 // TICK_S
        base, rem = divmod(self.conv_per_minute, n_ticks)
        ticks = range(part * n_ticks // parts, (part + 1) * n_ticks // parts)
        chunks = [self._tick(rng, t_m + TICK_S * i, base + int(i < rem)) for i in ticks]
        if part == 0:
            chunks.append(no_traffic(self.w, rng, t_m, self.lines_per_minute))
        recs = concat_records(chunks)
        order = np.argsort(recs["start"], kind="stable")
        return {c: v[order] for c, v in recs.items()}

    def _tick(self, rng: np.random.Generator, t: int, n_conv: int) -> Records:
        w = self.w
        idx = np.flatnonzero((w.launch <= t) & (w.terminate >= t + TICK_S))
        kind = w.kind[idx]
        servers = idx[np.isin(kind, _SERVER_KINDS)]
        elbs = idx[kind == KINDS.index("load_balancer")]
        if len(servers) == 0:
            return concat_records([])
        keys = w.app[servers] * 9 + w.region[servers] * 3 + w.az[servers]
        order = np.argsort(keys, kind="stable")
        self._srv, self._keys = servers[order], keys[order]
        counts = dict(zip(MIX, rng.multinomial(n_conv, list(MIX.values())), strict=True))
        if len(elbs) == 0:
            counts["call"] += counts["elb_forward"] + counts["elb_in"]
            counts["elb_forward"] = counts["elb_in"] = 0
        parts: list[Records] = []
        for name in ("call", "call_reject"):
            src = servers[rng.integers(len(servers), size=counts[name])]
            pick = rng.integers(self.deps.shape[1], size=len(src))
            dst_app = self.deps[w.app[src], pick]
            region = self.dep_regions[w.app[src], pick]
            region = np.where(region >= 0, region, w.region[src])
            parts.append(
                self._call(rng, t, src, dst_app, region, 0.6 if name == "call_reject" else 0.0)
            )
        fwd = elbs[rng.integers(max(len(elbs), 1), size=counts["elb_forward"])]
        parts.append(self._call(rng, t, fwd, w.app[fwd], w.region[fwd], 0.0))
        parts.append(self._aws(rng, t, servers[rng.integers(len(servers), size=counts["aws"])]))
        parts.append(self._nat(rng, t, servers[rng.integers(len(servers), size=counts["nat"])]))
        parts.append(self._inbound(rng, t, elbs, counts["elb_in"], is_scan=False))
        parts.append(self._inbound(rng, t, servers, counts["scan"], is_scan=True))
        return concat_records(parts)

    def _pick(
        self,
        rng: np.random.Generator,
        app: np.ndarray,
        region: np.ndarray,
        az: np.ndarray,
        is_zone: np.ndarray,
    ) -> np.ndarray:
        """A random alive server of ``app``: same AZ if zone-aware, else region, else anywhere."""
        k = self._keys
        lo_a, hi_a = (
            np.searchsorted(k, app * 9 + region * 3 + az),
            np.searchsorted(k, app * 9 + region * 3 + az, "right"),
        )
        lo_r, hi_r = (
            np.searchsorted(k, app * 9 + region * 3),
            np.searchsorted(k, app * 9 + region * 3 + 2, "right"),
        )
        lo_x, hi_x = np.searchsorted(k, app * 9), np.searchsorted(k, app * 9 + 8, "right")
        use_a = is_zone & (hi_a > lo_a)
        use_r = ~use_a & (hi_r > lo_r)
        lo = np.where(use_a, lo_a, np.where(use_r, lo_r, lo_x))
        hi = np.where(use_a, hi_a, np.where(use_r, hi_r, hi_x))
        pos = lo + np.floor(rng.random(len(app)) * (hi - lo)).astype(np.int64)
        return np.where(hi > lo, self._srv[np.minimum(pos, len(self._srv) - 1)], -1)

    def _call(
        self,
        rng: np.random.Generator,
        t: int,
        src: np.ndarray,
        dst_app: np.ndarray,
        region: np.ndarray,
        reject_share: float,
    ) -> Records:
        w = self.w
        is_zone = self.zone_aware[dst_app] & (rng.random(len(src)) < 0.9)
        dst = self._pick(rng, dst_app, region, w.az[src], is_zone)
        ok = dst >= 0
        src, dst, dst_app = src[ok], dst[ok], dst_app[ok]
        n = len(src)
        s = flow_shape(rng, n, t)
        end = clamp_end(w, s["start"], s["start"] + s["dur"], [src, dst])
        is_v6 = w.has_v6[src] & w.has_v6[dst] & (rng.random(n) < 0.3)
        action_in = np.where(rng.random(n) < reject_share, REJECT, ACCEPT)
        common = dict(
            src=src,
            dst=dst,
            is_v6=is_v6,
            srcport=s["srcport"],
            dstport=self.port[dst_app],
            protocol=self.proto[dst_app],
            packets=s["packets"],
            bytes=s["bytes"],
            start=s["start"],
            end=end,
        )
        out = make_records(n, eni=src, direction=EGRESS, action=ACCEPT, **common)
        into = make_records(n, eni=dst, direction=INGRESS, action=action_in, **common)
        return concat_records([out, into])

    def _aws(self, rng: np.random.Generator, t: int, src: np.ndarray) -> Records:
        w, n = self.w, len(src)
        region = np.where(rng.random(n) < 0.9, w.region[src], rng.integers(3, size=n))
        dst = (
            w.aws_start
            + region * self.n_aws_per_region
            + rng.integers(self.n_aws_per_region, size=n)
        )
        s = flow_shape(rng, n, t)
        end = clamp_end(w, s["start"], s["start"] + s["dur"], [src])
        return make_records(
            n,
            eni=src,
            src=src,
            dst=dst,
            srcport=s["srcport"],
            dstport=443,
            protocol=6,
            packets=s["packets"],
            bytes=s["bytes"],
            start=s["start"],
            end=end,
            direction=EGRESS,
            action=ACCEPT,
        )

    def _nat(self, rng: np.random.Generator, t: int, src: np.ndarray) -> Records:
        w, n = self.w, len(src)
        nat = self.nat_at[w.region[src] * 3 + w.az[src]]
        peer = w.inet_start + rng.integers(self.n_inet, size=n)
        s = flow_shape(rng, n, t)
        end = clamp_end(w, s["start"], s["start"] + s["dur"], [src, nat])
        c: dict[str, np.ndarray | int] = dict(
            srcport=s["srcport"],
            dstport=443,
            protocol=6,
            packets=s["packets"],
            bytes=s["bytes"],
            start=s["start"],
            end=end,
            action=ACCEPT,
        )
        return concat_records([
            make_records(n, eni=src, src=src, dst=peer, direction=EGRESS, **c),
            make_records(n, eni=nat, src=src, dst=nat, pkt_dst=peer, direction=INGRESS, **c),
            make_records(n, eni=nat, src=nat, dst=peer, direction=EGRESS, **c),
        ])  # fmt: skip

    def _inbound(
        self, rng: np.random.Generator, t: int, targets: np.ndarray, n: int, is_scan: bool
    ) -> Records:
        if n == 0 or len(targets) == 0:
            return concat_records([])
        w = self.w
        dst = targets[rng.integers(len(targets), size=n)]
        peer = w.inet_start + rng.integers(self.n_inet, size=n)
        s = flow_shape(rng, n, t)
        packets = rng.integers(1, 3, size=n) if is_scan else s["packets"]
        size = packets * 60 if is_scan else s["bytes"]
        port = _SCAN_PORTS[rng.integers(len(_SCAN_PORTS), size=n)] if is_scan else 443
        end = clamp_end(w, s["start"], s["start"] + s["dur"], [dst])
        return make_records(
            n,
            eni=dst,
            src=peer,
            dst=dst,
            srcport=s["srcport"],
            dstport=port,
            protocol=6,
            packets=packets,
            bytes=size,
            start=s["start"],
            end=end,
            direction=INGRESS,
            action=REJECT if is_scan else ACCEPT,
        )
