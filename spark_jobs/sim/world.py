"""The simulated world as column arrays: fleet resources plus AWS endpoints and internet peers.

Endpoints ``[0, n_fleet)`` are fleet incarnations (each with its own ENI), then AWS service
endpoints, then internet peers. Traffic code works on endpoint indices only; text (addresses,
names) is looked up by fancy indexing of the object arrays here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from spark_jobs.sim.apps import App, build_apps
from spark_jobs.sim.fleet import (
    KIND_INSTANCE,
    KIND_LB,
    KIND_NAT,
    KIND_TASK,
    Horizon,
    Incarnation,
    build_incarnations,
)
from spark_jobs.sim.geo import (
    ACCOUNTS,
    AZ_LETTERS,
    REGIONS,
    Geography,
    aws_endpoint_ips,
    build_geography,
    hex_id,
    internet_peer_ips,
)
from spark_jobs.sim.ipam import assign_addresses

KIND_AWS = "aws_service"
KIND_INTERNET = "internet"
KINDS: tuple[str, ...] = (KIND_INSTANCE, KIND_TASK, KIND_LB, KIND_NAT, KIND_AWS, KIND_INTERNET)
WINDOW_MODES = ("60", "600", "mixed")


def _obj(values: list[str | None]) -> np.ndarray:
    arr = np.empty(len(values), dtype=object)
    arr[:] = values
    return arr


@dataclass(frozen=True)
class World:
    """Fleet arrays (length ``n_fleet``) and endpoint text arrays (length ``n_endpoints``)."""

    geo: Geography
    apps: list[App]
    horizon: Horizon
    n_fleet: int
    app: np.ndarray  # int32, -1 for NAT gateways
    region: np.ndarray  # int64 region index
    az: np.ndarray  # int64 AZ index
    kind: np.ndarray  # int64 index into KINDS
    launch: np.ndarray  # int64 unix seconds
    terminate: np.ndarray  # int64 unix seconds (NEVER = still alive)
    has_v6: np.ndarray  # bool
    window: np.ndarray  # int64 aggregation window (s) of the ENI
    win_offset: np.ndarray  # int64 phase of the ENI's windows
    eni: np.ndarray  # object: interface id
    vpc_id: np.ndarray  # object
    subnet_id: np.ndarray  # object
    instance_id: np.ndarray  # object ('-' unless an EC2 instance)
    az_id: np.ndarray  # object
    group: np.ndarray  # object: ASG / service / load balancer name
    aws_start: int
    aws_region: np.ndarray  # int64 region index of each AWS endpoint
    aws_service: np.ndarray  # object
    inet_start: int
    n_endpoints: int
    ep_ip4: np.ndarray  # object
    ep_ip6: np.ndarray  # object (None when the endpoint has no IPv6 address)
    ep_app: np.ndarray  # object (None outside the fleet)
    ep_cluster: np.ndarray
    ep_region: np.ndarray
    ep_az: np.ndarray
    ep_kind: np.ndarray
    ep_resource: np.ndarray
    ep_account: np.ndarray


def _resource_ids(
    rng: np.random.Generator, incs: list[Incarnation]
) -> tuple[list[str | None], list[str | None]]:
    """Resource id (instance id, task ARN, load balancer, NAT id) and v5 instance-id."""
    lb_ids = {i.group: hex_id(rng, "x", 16)[2:] for i in incs if i.kind == KIND_LB}
    nat_ids = {(i.region_idx, i.az_idx): hex_id(rng, "nat") for i in incs if i.kind == KIND_NAT}
    resource: list[str | None] = []
    instance: list[str | None] = []
    for inc in incs:
        rid = hex_id(rng, "i")
        if inc.kind == KIND_TASK:
            rid = (
                f"arn:aws:ecs:{REGIONS[inc.region_idx]}:{ACCOUNTS[inc.region_idx]}:task/"
                f"{inc.cluster}/{rng.bytes(16).hex()}"
            )
        elif inc.kind == KIND_LB:
            rid = f"app/{inc.group}/{lb_ids[inc.group]}"
        elif inc.kind == KIND_NAT:
            rid = nat_ids[(inc.region_idx, inc.az_idx)]
        resource.append(rid)
        instance.append(rid if inc.kind == KIND_INSTANCE else "-")
    return resource, instance


def build_world(seed: int, n_apps: int, horizon: Horizon, window_mode: str = "mixed") -> World:
    """Deterministic world for ``seed``: apps, incarnations with addresses, endpoints."""
    if window_mode not in WINDOW_MODES:
        raise ValueError(f"window_mode must be one of {WINDOW_MODES}")
    rng = np.random.default_rng([seed, 1])
    geo = build_geography(rng)
    apps = build_apps(rng, n_apps)
    incs = sorted(build_incarnations(rng, apps, horizon), key=lambda i: (i.launch, i.cluster))
    ip4, ip6 = assign_addresses(rng, geo, incs)
    n = len(incs)
    region = np.array([i.region_idx for i in incs], dtype=np.int64)
    kind = np.array([KINDS.index(i.kind) for i in incs], dtype=np.int64)
    subnets = [geo.subnets[geo.subnet_index(i.region_idx, i.az_idx, i.is_public)] for i in incs]
    resource, instance = _resource_ids(rng, incs)
    eni = _obj([hex_id(rng, "eni") for _ in incs])
    window = np.full(n, 600 if window_mode == "600" else 60, dtype=np.int64)
    if window_mode == "mixed":
        window[region == 2] = 600
    win_offset = (rng.random(n) * window).astype(np.int64)
    aws = aws_endpoint_ips()
    peers = internet_peer_ips(rng)
    fleet_app: list[str | None] = [i.app_name for i in incs]
    none_aws: list[str | None] = [None] * len(aws)
    none_inet: list[str | None] = [None] * len(peers)
    return World(
        geo=geo,
        apps=apps,
        horizon=horizon,
        n_fleet=n,
        app=np.array([i.app for i in incs], dtype=np.int64),
        region=region,
        az=np.array([i.az_idx for i in incs], dtype=np.int64),
        kind=kind,
        launch=np.array([i.launch for i in incs], dtype=np.int64),
        terminate=np.array([i.terminate for i in incs], dtype=np.int64),
        has_v6=np.array([a is not None for a in ip6], dtype=bool),
        window=window,
        win_offset=win_offset,
        eni=eni,
        vpc_id=_obj([s.vpc_id for s in subnets]),
        subnet_id=_obj([s.subnet_id for s in subnets]),
        instance_id=_obj(instance),
        az_id=_obj([s.az_id for s in subnets]),
        group=_obj([i.group for i in incs]),
        aws_start=n,
        aws_region=np.array([REGIONS.index(r) for _, r, _ in aws], dtype=np.int64),
        aws_service=_obj([s for _, _, s in aws]),
        inet_start=n + len(aws),
        n_endpoints=n + len(aws) + len(peers),
        ep_ip4=_obj([*ip4, *(a for a, _, _ in aws), *peers]),
        ep_ip6=_obj([*ip6, *none_aws, *none_inet]),
        ep_app=_obj([*fleet_app, *none_aws, *none_inet]),
        ep_cluster=_obj([*(i.cluster for i in incs), *none_aws, *none_inet]),
        ep_region=_obj(
            [*(REGIONS[i.region_idx] for i in incs), *(r for _, r, _ in aws), *none_inet]
        ),
        ep_az=_obj(
            [*(REGIONS[i.region_idx] + AZ_LETTERS[i.az_idx] for i in incs), *none_aws, *none_inet]
        ),
        ep_kind=_obj(
            [*(i.kind for i in incs), *([KIND_AWS] * len(aws)), *([KIND_INTERNET] * len(peers))]
        ),
        ep_resource=_obj([*resource, *(f"aws:{s}" for _, _, s in aws), *none_inet]),
        ep_account=_obj([*(ACCOUNTS[i.region_idx] for i in incs), *none_aws, *none_inet]),
    )
