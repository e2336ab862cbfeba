"""The simulated fleet: address reuse, non-overlapping owners, geography documents."""

from __future__ import annotations

import ipaddress
import itertools
from collections import defaultdict
from datetime import datetime

import numpy as np

from spark_jobs.sim.fleet import Horizon
from spark_jobs.sim.geo import ip_ranges_doc, vpcs_doc
from spark_jobs.sim.inventory import Interval, ownership_intervals
from spark_jobs.sim.ipam import SubnetPool
from spark_jobs.sim.world import build_world

T0 = 1_735_689_600


def _by_ip(intervals: list[Interval]) -> dict[str, list[Interval]]:
    out: dict[str, list[Interval]] = defaultdict(list)
    for iv in intervals:
        out[iv.ip].append(iv)
    return {ip: sorted(ivs, key=lambda i: i.valid_from) for ip, ivs in out.items()}


def test_owners_of_one_ip_never_overlap() -> None:
    world = build_world(3, 25, Horizon(T0, T0 + 900))
    for ip, ivs in _by_ip(ownership_intervals(world)).items():
        for prev, nxt in itertools.pairwise(ivs):
            assert prev.valid_to is not None, ip
            assert prev.valid_to < nxt.valid_from, (ip, prev, nxt)


def test_released_ips_are_taken_by_other_apps_within_minutes() -> None:
    world = build_world(3, 25, Horizon(T0, T0 + 900))
    handovers = []
    for ivs in _by_ip(ownership_intervals(world)).values():
        for prev, nxt in itertools.pairwise(ivs):
            assert prev.valid_to is not None
            gap = nxt.valid_from - prev.valid_to
            other_app = world.ep_app[prev.fleet_idx] != world.ep_app[nxt.fleet_idx]
            handovers.append((gap, other_app))
    cross_app = [gap for gap, other in handovers if other]
    assert len(cross_app) >= 10
    assert min(cross_app) <= 10  # seconds
    assert np.median(cross_app) <= 600


def test_subnet_pool_reuses_recent_release_after_min_gap() -> None:
    pool = SubnetPool("10.9.0.0/28", np.random.default_rng(0), p_reuse=1.0)
    a = pool.allocate(100)
    pool.release(a, 200)
    assert pool.allocate(201) != a  # still within the minimum gap
    assert pool.allocate(205) == a
    assert ipaddress.ip_address(a) in ipaddress.ip_network("10.9.0.0/28")


def test_world_is_deterministic_per_seed() -> None:
    h = Horizon(T0, T0 + 300)
    a, b, c = build_world(5, 10, h), build_world(5, 10, h), build_world(6, 10, h)
    assert a.ep_ip4.tolist() == b.ep_ip4.tolist() and a.eni.tolist() == b.eni.tolist()
    assert a.eni.tolist() != c.eni.tolist()


def test_fleet_spans_three_regions_and_kinds() -> None:
    world = build_world(2, 30, Horizon(T0, T0 + 600))
    fleet_kinds = set(world.ep_kind[: world.n_fleet].tolist())
    assert fleet_kinds == {"instance", "task", "load_balancer", "nat_gateway"}
    assert set(world.ep_region[: world.n_fleet].tolist()) == {"us-east-1", "us-west-2", "eu-west-1"}
    clusters = set(world.ep_cluster[: world.n_fleet].tolist())
    groups = set(world.group.tolist())
    assert any(g.rsplit("-v", 1)[0] in clusters and g[-4] == "v" for g in groups)


def test_ip_ranges_and_vpcs_documents() -> None:
    world = build_world(2, 5, Horizon(T0, T0 + 60))
    doc = ip_ranges_doc(datetime(2025, 1, 1, 12, 30))
    assert set(doc) == {"syncToken", "createDate", "prefixes", "ipv6_prefixes"}
    assert doc["createDate"] == "2025-01-01-12-30-00"
    assert set(doc["prefixes"][0]) == {"ip_prefix", "region", "service", "network_border_group"}
    assert set(doc["ipv6_prefixes"][0]) == {"ipv6_prefix", "region", "service",
                                            "network_border_group"}  # fmt: skip
    vpcs = vpcs_doc(world.geo)
    assert {v["cidr"] for v in vpcs["vpcs"]} >= {"10.0.0.0/16", "10.1.0.0/16", "10.2.0.0/16"}
    assert set(vpcs["subnets"][0]) == {"subnet_id", "cidr", "vpc_id", "az", "region", "account_id"}
    for k in range(world.n_fleet):
        subnet = [s for s in vpcs["subnets"] if s["subnet_id"] == world.subnet_id[k]]
        assert any(
            ipaddress.ip_address(world.ep_ip4[k]) in ipaddress.ip_network(s["cidr"]) for s in subnet
        )
