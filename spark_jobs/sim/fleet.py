"""Apps, clusters and the life cycles of their instances, tasks, load balancers and NATs.

Names follow Netflix's convention: cluster ``app-stack[-detail]``, auto scaling group
``cluster-vNNN``. Each (cluster, region) has capacity *slots* spread over the AZs; a slot is a
sequence of incarnations (launch, terminate) with a replacement gap between them. Red/black
deploys move every slot to the next ASG version, scaling adds temporary slots. Addresses are
assigned later, in time order (see :mod:`spark_jobs.sim.ipam`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from spark_jobs.sim.apps import App
from spark_jobs.sim.geo import N_AZS, N_REGIONS, REGIONS

NEVER = 2**62  # terminate time of an incarnation still alive at the end of the horizon
KIND_INSTANCE = "instance"
KIND_TASK = "task"
KIND_LB = "load_balancer"
KIND_NAT = "nat_gateway"
NAT_APP = "natgw"


@dataclass(frozen=True)
class Incarnation:
    """One resource holding one ENI from ``launch`` until ``terminate`` (half-open)."""

    app: int  # -1 for NAT gateways
    app_name: str
    cluster: str
    group: str  # ASG / ECS service / load balancer name
    kind: str
    region_idx: int
    az_idx: int
    is_public: bool
    is_dual_stack: bool
    launch: int
    terminate: int


def _slot(
    rng: np.random.Generator,
    start: int,
    stop: int,
    is_forced: bool,
    mean_life: float,
    gap: int,
    born: int | None = None,
) -> list[tuple[int, int]]:
    """Incarnations of one slot in [start, stop): replaced after an exponential life.

    With ``born``, the first incarnation already runs since ``born`` and lives a residual
    (memoryless) life from ``start``, so there is no churn history before the horizon.
    """
    out: list[tuple[int, int]] = []
    t = start
    while True:
        end = t + max(30, int(rng.exponential(mean_life)))
        launch = born if born is not None and not out else t
        if end >= stop:
            out.append((launch, stop if is_forced else NEVER))
            return out
        out.append((launch, end))
        t = end + int(rng.integers(1, gap + 1))
        if t >= stop:
            return out


@dataclass(frozen=True)
class Horizon:
    """Simulated time: incarnations exist from before ``t0`` to ``t1`` (unix seconds)."""

    t0: int
    t1: int
    churn: float = 1.0


def _cluster_incarnations(
    rng: np.random.Generator, app: App, cluster: str, capacity: int, region: int, h: Horizon
) -> list[Incarnation]:
    kind = KIND_TASK if app.platform == "ecs" else KIND_INSTANCE
    mean_life = (600.0 if kind == KIND_TASK else 2400.0) / h.churn
    gap = 30 if kind == KIND_TASK else 120
    span = h.t1 - h.t0
    deploy = int(rng.integers(h.t0 + span // 6, h.t1)) if rng.random() < 0.5 * h.churn else None
    version = int(rng.integers(1, 300))
    extra = max(1, capacity // 3) if rng.random() < 0.5 else 0
    out: list[Incarnation] = []

    def emit(slot: int, asg: str, spans: list[tuple[int, int]]) -> None:
        for launch, terminate in spans:
            out.append(
                Incarnation(
                    app.idx,
                    app.name,
                    cluster,
                    asg,
                    kind,
                    region,
                    slot % N_AZS,
                    False,
                    app.is_dual_stack,
                    launch,
                    terminate,
                )
            )

    for slot in range(capacity + extra):
        born: int | None = None
        if slot < capacity:
            start, stop, born = h.t0, h.t1, h.t0 - int(rng.integers(60, 7200))
        else:  # scale out then back in
            start = int(rng.integers(h.t0, h.t1))
            stop = start + int(rng.integers(120, 1800))
        old_stop = min(stop, deploy + int(rng.integers(120, 300))) if deploy else stop
        is_forced = slot >= capacity or old_stop < stop
        if old_stop > start:
            spans = _slot(rng, start, old_stop, is_forced, mean_life, gap, born)
            emit(slot, f"{cluster}-v{version:03d}", spans)
        if deploy is not None and stop > deploy + 60:
            new_start = max(start, deploy + int(rng.integers(0, 60)))
            spans = _slot(rng, new_start, stop, slot >= capacity, mean_life, gap)
            emit(slot, f"{cluster}-v{version + 1:03d}", spans)
    return out


def build_incarnations(rng: np.random.Generator, apps: list[App], h: Horizon) -> list[Incarnation]:
    """Every incarnation of every app, load balancer node and NAT gateway, unordered."""
    out: list[Incarnation] = []
    for r in range(N_REGIONS):
        for a in range(N_AZS):
            out.append(
                Incarnation(
                    -1,
                    NAT_APP,
                    f"{NAT_APP}-{REGIONS[r]}",
                    f"{NAT_APP}-{REGIONS[r]}",
                    KIND_NAT,
                    r,
                    a,
                    True,
                    False,
                    h.t0 - 86400 * 30,
                    NEVER,
                )
            )
    for app in apps:
        stack = "prod" if rng.random() < 0.85 else "test"
        clusters = [(f"{app.name}-{stack}", app.capacity)]
        if rng.random() < 0.25:
            clusters.append((f"{app.name}-{stack}-{rng.choice(['canary', 'worker', 'batch'])}", 1))
        for region in app.regions:
            for cluster, capacity in clusters:
                out.extend(_cluster_incarnations(rng, app, cluster, capacity, region, h))
            if app.has_elb:
                lb = f"{app.name}-{stack}-elb"
                for a in range(N_AZS):
                    for launch, terminate in _slot(
                        rng, h.t0, h.t1, False, 6 * 3600.0, 20, h.t0 - 86400
                    ):
                        out.append(
                            Incarnation(
                                app.idx,
                                app.name,
                                clusters[0][0],
                                lb,
                                KIND_LB,
                                region,
                                a,
                                True,
                                app.is_dual_stack,
                                launch,
                                terminate,
                            )
                        )
    return out
