"""CloudWatch Logs subscription envelopes (gzip JSON), in delivery order.

Each DATA_MESSAGE carries the events of one log stream (the ENI) delivered together, at most
:data:`MAX_EVENTS` of them; CONTROL_MESSAGEs are what CloudWatch sends to check a destination.
"""

from __future__ import annotations

import gzip
import heapq
import itertools
import json
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import pyarrow as pa

from spark_jobs.sim.emit import gzip_bytes
from spark_jobs.sim.records import Records
from spark_jobs.sim.world import World

MAX_EVENTS = 500
SUBSCRIPTION_FILTER = "dredge-flows"
CONTROL_TEXT = "CWL CONTROL MESSAGE: Checking health of destination Kinesis stream."


def log_group(region: str) -> str:
    """The flow log's CloudWatch log group."""
    return f"/dredge/vpc-flow-logs/{region}"


@dataclass(frozen=True, order=True)
class Envelope:
    """One gzip'd subscription message with its delivery time (unix seconds)."""

    delivery: int
    seq: int
    partition_key: str = field(compare=False)
    data: bytes = field(compare=False)
    n_events: int = field(compare=False)


class EnvelopeSink(Protocol):
    """Where envelopes go (a Kinesis stream, a list in tests)."""

    def put(self, envelopes: list[Envelope]) -> None: ...

    def close(self) -> None: ...


class ListSink:
    """Keeps envelopes in memory (tests, small runs)."""

    def __init__(self) -> None:
        self.envelopes: list[Envelope] = []

    def put(self, envelopes: list[Envelope]) -> None:
        self.envelopes.extend(envelopes)

    def close(self) -> None:
        return None


def decode(data: bytes) -> dict[str, object]:
    """gunzip + JSON of one envelope."""
    body: dict[str, object] = json.loads(gzip.decompress(data))
    return body


class EnvelopeBuilder:
    """Groups a chunk's lines into envelopes per (ENI, delivery time)."""

    def __init__(self, world: World, gzip_level: int = 6) -> None:
        self.world = world
        self.level = gzip_level
        self.seq = 0

    def build(self, recs: Records, lines: pa.Array, delivery: np.ndarray) -> list[Envelope]:
        """Envelopes for one chunk; event timestamps are the flows' start (ms)."""
        w, eni = self.world, recs["eni"]
        order = np.lexsort((np.arange(len(eni)), eni, delivery))
        key = delivery[order] * (1 << 24) + eni[order]
        cuts = np.flatnonzero(np.diff(key)) + 1
        bounds = [0, *cuts.tolist(), len(order)]
        out: list[Envelope] = []
        text = np.asarray(lines.to_pylist(), dtype=object)
        for a, b in itertools.pairwise(bounds):
            for lo in range(a, b, MAX_EVENTS):
                idx = order[lo : min(b, lo + MAX_EVENTS)]
                k = int(eni[idx[0]])
                events = []
                for msg, ts in zip(text[idx].tolist(), (recs["start"][idx] * 1000).tolist(),
                                   strict=True):  # fmt: skip
                    events.append({"id": f"{ts:020d}{self.seq:036d}", "timestamp": ts,
                                   "message": msg})  # fmt: skip
                    self.seq += 1
                body = {
                    "messageType": "DATA_MESSAGE",
                    "owner": w.ep_account[k],
                    "logGroup": log_group(w.ep_region[k]),
                    "logStream": w.eni[k],
                    "subscriptionFilters": [SUBSCRIPTION_FILTER],
                    "logEvents": events,
                }
                out.append(self._envelope(int(delivery[idx[0]]), w.eni[k], body, len(events)))
        return out

    def control(self, t: int) -> Envelope:
        """A CONTROL_MESSAGE delivered at ``t``."""
        body: dict[str, object] = {
            "messageType": "CONTROL_MESSAGE",
            "owner": "CloudwatchLogs",
            "logGroup": "",
            "logStream": "",
            "subscriptionFilters": [],
            "logEvents": [{"id": "", "timestamp": t * 1000, "message": CONTROL_TEXT}],
        }
        self.seq += 1
        return self._envelope(t, f"control-{self.seq}", body, 0)

    def _envelope(self, t: int, key: str, body: dict[str, object], n: int) -> Envelope:
        data = gzip_bytes(json.dumps(body, separators=(",", ":")).encode(), self.level)
        self.seq += 1
        return Envelope(t, self.seq, key, data, n)


class DeliveryBuffer:
    """Holds envelopes until their delivery time has passed, then releases them in order."""

    def __init__(self) -> None:
        self._heap: list[Envelope] = []

    def push(self, envelopes: list[Envelope]) -> None:
        for e in envelopes:
            heapq.heappush(self._heap, e)

    def release(self, until: int | None = None) -> list[Envelope]:
        """Envelopes delivered at or before ``until`` (all when None), oldest first."""
        out: list[Envelope] = []
        while self._heap and (until is None or self._heap[0].delivery <= until):
            out.append(heapq.heappop(self._heap))
        return out

    def __len__(self) -> int:
        return len(self._heap)
