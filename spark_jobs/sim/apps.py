"""Apps and the traffic graph between them (who calls whom, from which region)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from spark_jobs.sim.geo import N_REGIONS

_WORDS = tuple(
    [
        "api",
        "edge",
        "billing",
        "catalog",
        "cart",
        "search",
        "auth",
        "profile",
        "ratings",
        "playback",
        "license",
        "drm",
        "subscriber",
        "gateway",
        "zuul",
        "eureka",
        "artwork",
        "encoder",
        "recs",
        "bookmarks",
        "history",
        "payments",
        "ledger",
        "notify",
        "mailer",
        "queue",
        "indexer",
        "metrics",
        "logs",
        "config",
        "identity",
        "session",
        "device",
        "router",
    ]
)
_PORTS = ((8080, 6), (7001, 6), (443, 6), (9090, 6), (6379, 6), (5432, 6), (8125, 17), (9042, 6))


@dataclass(frozen=True)
class App:
    """One application: where it runs, how it serves, whom it calls."""

    idx: int
    name: str
    regions: tuple[int, ...]
    platform: str  # "ec2" or "ecs"
    port: int
    protocol: int
    capacity: int
    is_zone_aware: bool
    is_dual_stack: bool
    has_elb: bool
    deps: tuple[int, ...]
    dep_regions: tuple[int, ...]  # -1 = the caller's region; else a deliberate cross-region talk


def _app_names(n: int) -> list[str]:
    return [
        _WORDS[i % len(_WORDS)] + (str(i // len(_WORDS)) if i >= len(_WORDS) else "")
        for i in range(n)
    ]


def build_apps(rng: np.random.Generator, n_apps: int) -> list[App]:
    """``n_apps`` apps with Zipf-ish capacity and a dependency graph with cross-region edges."""
    names = _app_names(n_apps)
    popularity = 1.0 / np.arange(1, n_apps + 1) ** 0.8
    popularity /= popularity.sum()
    apps: list[App] = []
    region_sets: list[tuple[int, ...]] = []
    for _ in range(n_apps):
        u = rng.random()
        k = 3 if u < 0.3 else (2 if u < 0.45 else 1)
        region_sets.append(tuple(sorted(int(r) for r in rng.choice(N_REGIONS, k, replace=False))))
    for i, name in enumerate(names):
        others = [j for j in range(n_apps) if j != i]
        n_deps = min(len(others), 4)
        weights = popularity[others] / popularity[others].sum()
        deps = tuple(int(d) for d in rng.choice(others, n_deps, replace=False, p=weights))
        dep_regions = tuple(
            int(rng.choice(region_sets[d])) if rng.random() < 0.12 else -1 for d in deps
        )
        port, proto = _PORTS[int(rng.integers(len(_PORTS)))]
        apps.append(
            App(
                idx=i,
                name=name,
                regions=region_sets[i],
                platform="ecs" if rng.random() < 0.3 else "ec2",
                port=port,
                protocol=proto,
                capacity=int(2 + min(12, popularity[i] * n_apps * 3)),
                is_zone_aware=bool(rng.random() < 0.4),
                is_dual_stack=bool(rng.random() < 0.25),
                has_elb=bool(rng.random() < 0.4),
                deps=deps,
                dep_regions=dep_regions,
            )
        )
    return apps
