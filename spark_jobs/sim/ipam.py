"""Address assignment in time order, with the quick reuse of released addresses AWS shows.

A subnet hands out a recently released address (LIFO or any eligible one) with probability
``p_reuse`` once it has been free for ``min_gap`` seconds, else a never-used one; so an address
released by one app is typically taken by another app within seconds to minutes. Because a
release is processed before any later launch, two holders of one address never overlap.
"""

from __future__ import annotations

import bisect
import ipaddress

import numpy as np

from spark_jobs.sim.fleet import NEVER, Incarnation
from spark_jobs.sim.geo import Geography

P_REUSE = 0.7
MIN_GAP_S = 2


class SubnetPool:
    """Free IPv4 addresses of one subnet (AWS reserves the first four and the last)."""

    def __init__(self, cidr: str, rng: np.random.Generator, p_reuse: float = P_REUSE) -> None:
        net = ipaddress.ip_network(cidr)
        self._base = int(net.network_address)
        self._fresh = [int(x) for x in rng.permutation(np.arange(4, net.num_addresses - 1))]
        self._released_at: list[int] = []
        self._released: list[int] = []
        self._rng = rng
        self._p_reuse = p_reuse

    def allocate(self, t: int) -> str:
        """An address for a resource launched at ``t``."""
        n_eligible = bisect.bisect_right(self._released_at, t - MIN_GAP_S)
        use_released = n_eligible > 0 and (self._rng.random() < self._p_reuse or not self._fresh)
        if use_released:
            j = n_eligible - 1 if self._rng.random() < 0.5 else int(self._rng.integers(n_eligible))
            self._released_at.pop(j)
            offset = self._released.pop(j)
        elif self._fresh:
            offset = self._fresh.pop()
        else:
            raise RuntimeError("subnet exhausted; use fewer apps or a larger subnet")
        return str(ipaddress.IPv4Address(self._base + offset))

    def release(self, address: str, t: int) -> None:
        """``address`` is free from ``t`` (calls come in time order)."""
        self._released_at.append(t)
        self._released.append(int(ipaddress.IPv4Address(address)) - self._base)


def assign_addresses(
    rng: np.random.Generator, geo: Geography, incs: list[Incarnation]
) -> tuple[list[str], list[str | None]]:
    """IPv4 (reused quickly) and IPv6 (random, dual-stack only) address of each incarnation."""
    pools = [SubnetPool(s.cidr, rng) for s in geo.subnets]
    subnet_of = [geo.subnet_index(i.region_idx, i.az_idx, i.is_public) for i in incs]
    events: list[tuple[int, int, int]] = [(inc.launch, 1, k) for k, inc in enumerate(incs)]
    events += [(inc.terminate, 0, k) for k, inc in enumerate(incs) if inc.terminate != NEVER]
    events.sort()
    ip4: list[str] = [""] * len(incs)
    for t, is_launch, k in events:
        pool = pools[subnet_of[k]]
        if is_launch:
            ip4[k] = pool.allocate(t)
        else:
            pool.release(ip4[k], t)
    ip6: list[str | None] = []
    for k, inc in enumerate(incs):
        if not inc.is_dual_stack:
            ip6.append(None)
            continue
        net = ipaddress.ip_network(geo.subnets[subnet_of[k]].ipv6_cidr)
        host = int.from_bytes(rng.bytes(8), "big") | 1
        ip6.append(str(ipaddress.IPv6Address(int(net.network_address) + host)))
    return ip4, ip6
