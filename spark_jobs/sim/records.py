"""Flow records as column arrays, their windows and their delivery times.

A record batch is a ``dict`` of equal-length numpy arrays named by :data:`COLUMNS`; endpoints
are indices into the world's endpoint arrays, ``eni`` is the fleet index of the recording ENI.
"""

from __future__ import annotations

import numpy as np

from spark_jobs.sim.world import World

Records = dict[str, np.ndarray]
COLUMNS: tuple[str, ...] = (
    "eni", "src", "dst", "pkt_src", "pkt_dst", "is_v6", "srcport", "dstport", "protocol",
    "packets", "bytes", "start", "end", "action", "status", "direction",
)  # fmt: skip
ACCEPT, REJECT = 0, 1
STATUS_OK, STATUS_NODATA, STATUS_SKIPDATA = 0, 1, 2
INGRESS, EGRESS = 0, 1
TICK_S = 5  # traffic is generated per tick among resources alive for the whole tick
NODATA_SHARE = 0.01
SKIPDATA_SHARE = 0.002
LATE_SHARE = 0.005  # records delivered 30 min to 2 h late
_MASK64 = np.uint64(0xFFFFFFFFFFFFFFFF)


def empty_records() -> Records:
    """A batch with no rows."""
    return {c: np.zeros(0, dtype=bool if c == "is_v6" else np.int64) for c in COLUMNS}


def concat_records(parts: list[Records]) -> Records:
    """Rows of ``parts`` in order."""
    parts = [p for p in parts if len(p["eni"])] or [empty_records()]
    return {c: np.concatenate([p[c] for p in parts]) for c in COLUMNS}


def take(recs: Records, idx: np.ndarray) -> Records:
    """Rows ``idx`` (an index or boolean array)."""
    return {c: v[idx] for c, v in recs.items()}


def make_records(n: int, **cols: np.ndarray | int) -> Records:
    """A batch of ``n`` rows; scalars broadcast, ``pkt_src``/``pkt_dst`` default to src/dst."""
    out: Records = {}
    for c in COLUMNS:
        value = cols.get(c)
        if value is None and c in ("pkt_src", "pkt_dst"):
            value = cols[c[4:]]
        if value is None:
            value = 0
        dtype = bool if c == "is_v6" else np.int64
        out[c] = np.broadcast_to(np.asarray(value, dtype=dtype), (n,)).copy()
    return out


def window_bounds(world: World, eni: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start and end (exclusive) of the aggregation window of ``eni`` that contains ``t``."""
    w = world.window[eni]
    start = t - (t - world.win_offset[eni]) % w
    return start, start + w


def _splitmix(x: np.ndarray) -> np.ndarray:
    z = (x + np.uint64(0x9E3779B97F4A7C15)) & _MASK64
    z = ((z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)) & _MASK64
    z = ((z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)) & _MASK64
    return z ^ (z >> np.uint64(31))


def _unit(h: np.ndarray) -> np.ndarray:
    return (h >> np.uint64(11)).astype(np.float64) / float(1 << 53)


def delivery_times(world: World, seed: int, recs: Records) -> np.ndarray:
    """Unix second each record reaches CloudWatch/S3: window end + a delay shared per window.

    The delay is a function of (seed, ENI, window) only, so every record of one capture window
    is published together, whichever generation chunk produced it.
    """
    eni = recs["eni"]
    wstart, wend = window_bounds(world, eni, recs["start"])
    key = (eni.astype(np.uint64) << np.uint64(32)) ^ wstart.astype(np.uint64)
    h1 = _splitmix(key ^ np.uint64(seed & 0xFFFFFFFF))
    h2 = _splitmix(h1)
    delay = 60 + np.floor(-np.log1p(-_unit(h1)) * 150.0).astype(np.int64)
    is_late = _unit(h2) < LATE_SHARE
    late = 1800 + (_unit(_splitmix(h2)) * 5400).astype(np.int64)
    return wend + delay + np.where(is_late, late, 0)


def clamp_end(
    world: World, start: np.ndarray, end: np.ndarray, fleet_ends: list[np.ndarray]
) -> np.ndarray:
    """``end`` limited to every fleet endpoint's window and life (``fleet_ends`` = indices)."""
    for ep in fleet_ends:
        _, wend = window_bounds(world, ep, start)
        end = np.minimum(end, np.minimum(wend, world.terminate[ep]) - 1)
    return np.maximum(end, start)


def flow_shape(rng: np.random.Generator, n: int, t: int) -> dict[str, np.ndarray]:
    """Start (in the tick at ``t``), duration, client port, packets and bytes of ``n`` flows."""
    packets = 1 + rng.geometric(0.05, size=n)
    return {
        "start": t + rng.integers(0, TICK_S, size=n),
        "dur": rng.exponential(20.0, size=n).astype(np.int64),
        "srcport": rng.integers(32768, 61000, size=n),
        "packets": packets,
        "bytes": packets * rng.integers(40, 1500, size=n),
    }


def no_traffic(world: World, rng: np.random.Generator, t: int, lines_per_minute: int) -> Records:
    """NODATA / SKIPDATA records for windows that open in [t, t + 60) on distinct ENIs."""
    w = world
    alive = np.flatnonzero((w.launch <= t) & (w.terminate > t + 60))
    opens = t + (w.win_offset[alive] - t) % w.window[alive]
    alive, opens = alive[opens < t + 60], opens[opens < t + 60]
    n_nodata = int(rng.binomial(lines_per_minute, NODATA_SHARE))
    n_skip = int(rng.binomial(lines_per_minute, SKIPDATA_SHARE))
    n = min(len(alive), n_nodata + n_skip)
    if n == 0:
        return concat_records([])
    pick = rng.choice(len(alive), size=n, replace=False)
    eni, start = alive[pick], opens[pick]
    end = np.minimum(start + w.window[eni], w.terminate[eni]) - 1
    n_skip = min(n_skip, round(n * n_skip / (n_nodata + n_skip)))
    status = np.where(np.arange(n) < n - n_skip, STATUS_NODATA, STATUS_SKIPDATA)
    return make_records(
        n,
        eni=eni,
        src=-1,
        dst=-1,
        start=start,
        end=end,
        status=status,
        direction=INGRESS,
        action=ACCEPT,
    )
