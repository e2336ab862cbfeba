"""Offsets of the ``dredge-kinesis`` source and the pure planning logic (no I/O, no boto3).

An offset (what Spark writes to its offset log) is a JSON dict::

    {"v": 1, "plan": "000000000007-1f2e3d4c", "start": "TRIM_HORIZON", "until": 1764130000000,
     "shards": {"<stream>/<shardId>": {"from": "AFTER:4968...", "done": false,
                                       "read": true, "n": 500, "b": null}}}

``from`` is where the shard's next read starts (``TRIM_HORIZON``, ``AT_TIMESTAMP:<epoch ms>`` or
``AFTER:<sequence number>``; sequence numbers stay strings). ``read``/``n``/``b`` are this
batch's budget for the shard (records / bytes; null = unbounded) and ``until`` the arrival-time
cut: the batch reads records that arrived at or before it. What an executor actually reached is
*not* in the offset - it is written by the executor as an :class:`Outcome` file under the
metadata path, keyed by ``plan`` and shard (see ``datasource.py`` for the whole protocol).
"""

from __future__ import annotations

import json
import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from typing import Any

TRIM_HORIZON = "TRIM_HORIZON"
AT_TIMESTAMP = "AT_TIMESTAMP:"
AFTER = "AFTER:"
VERSION = 1


class OffsetError(ValueError):
    """An offset or a starting position cannot be interpreted."""


def parse_starting_position(text: str, now_ms: int) -> str:
    """``TRIM_HORIZON`` | ``LATEST`` | ``AT_TIMESTAMP:<ISO-8601>`` -> an offset position.

    ``LATEST`` becomes ``AT_TIMESTAMP:<now>`` so that it means the same thing on every replay.
    """
    value = text.strip()
    upper = value.upper()
    if upper in (TRIM_HORIZON, "EARLIEST"):
        return TRIM_HORIZON
    if upper == "LATEST":
        return f"{AT_TIMESTAMP}{now_ms}"
    if upper.startswith(AT_TIMESTAMP):
        iso = value[len(AT_TIMESTAMP) :].strip().replace("Z", "+00:00")
        try:
            moment = datetime.fromisoformat(iso)
        except ValueError as exc:
            raise OffsetError(f"startingPosition: bad ISO-8601 timestamp {iso!r}") from exc
        if moment.tzinfo is None:
            raise OffsetError("startingPosition: AT_TIMESTAMP needs a time zone (e.g. 'Z')")
        return f"{AT_TIMESTAMP}{int(moment.timestamp() * 1000)}"
    raise OffsetError(
        f"startingPosition: expected TRIM_HORIZON, LATEST or AT_TIMESTAMP:<ISO-8601>, got {text!r}"
    )


@dataclass(frozen=True)
class ShardState:
    """One shard in an offset."""

    start: str
    done: bool = False
    read: bool = False
    max_records: int | None = None
    max_bytes: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "from": self.start,
            "done": self.done,
            "read": self.read,
            "n": self.max_records,
            "b": self.max_bytes,
        }

    @staticmethod
    def from_json(raw: Mapping[str, Any]) -> ShardState:
        return ShardState(raw["from"], raw["done"], raw["read"], raw["n"], raw["b"])


@dataclass(frozen=True)
class Offset:
    """The source's offset: one state per shard plus the batch's plan id and time cut."""

    plan: str
    start: str
    until: int | None
    shards: dict[str, ShardState] = field(default_factory=dict)

    @property
    def counter(self) -> int:
        return int(self.plan.split("-", 1)[0])

    def to_json(self) -> dict[str, Any]:
        return {
            "v": VERSION,
            "plan": self.plan,
            "start": self.start,
            "until": self.until,
            "shards": {k: self.shards[k].to_json() for k in sorted(self.shards)},
        }

    @staticmethod
    def from_json(raw: Mapping[str, Any]) -> Offset:
        if raw.get("v") != VERSION:
            raise OffsetError(f"unsupported dredge-kinesis offset version: {raw.get('v')!r}")
        shards = {k: ShardState.from_json(v) for k, v in raw["shards"].items()}
        return Offset(raw["plan"], raw["start"], raw["until"], shards)


def new_plan_id(counter: int) -> str:
    """Plan ids sort by batch counter; the random tail tells re-planned attempts apart."""
    return f"{counter:012d}-{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True)
class ShardInfo:
    """A shard as ListShards reports it."""

    key: str
    parents: tuple[str, ...] = ()
    closed: bool = False


@dataclass(frozen=True)
class Outcome:
    """What an executor reached for one shard of one plan (written once, then immutable)."""

    last: str | None  # last Kinesis sequence number read (inclusive), None = nothing read
    count: int = 0  # Kinesis records read (before KPL de-aggregation)
    ended: bool = False  # closed shard read to its very end
    more: bool = False  # stopped on a budget or the time cut: more data is known to exist
    millis_behind: int | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @staticmethod
    def from_json(text: str) -> Outcome:
        return Outcome(**json.loads(text))


def shard_key(stream: str, shard_id: str) -> str:
    return f"{stream}/{shard_id}"


def split_key(key: str) -> tuple[str, str]:
    stream, shard_id = key.split("/", 1)
    return stream, shard_id


def apply_outcomes(offset: Offset, outcomes: Mapping[str, Outcome]) -> dict[str, ShardState]:
    """Positions after ``offset``'s batch: each read shard moves past what its executor reached."""
    states: dict[str, ShardState] = {}
    for key, state in offset.shards.items():
        if not state.read:
            states[key] = ShardState(state.start, state.done)
            continue
        outcome = outcomes[key]
        start = f"{AFTER}{outcome.last}" if outcome.last is not None else state.start
        states[key] = ShardState(start, state.done or outcome.ended)
    return states


def _children(listing: Iterable[ShardInfo]) -> dict[str, list[str]]:
    children: dict[str, list[str]] = defaultdict(list)
    for info in listing:
        for parent in info.parents:
            children[parent].append(info.key)
    return children


def _has_descendant_in(key: str, children: Mapping[str, list[str]], states: Mapping) -> bool:
    todo = list(children.get(key, ()))
    seen: set[str] = set()
    while todo:
        child = todo.pop()
        if child in states:
            return True
        if child not in seen:
            seen.add(child)
            todo.extend(children.get(child, ()))
    return False


def reconcile(
    states: Mapping[str, ShardState], listing: list[ShardInfo], start: str
) -> tuple[dict[str, ShardState], list[str]]:
    """Add newly readable shards, retire finished ones; returns (states, lost shard keys).

    A shard is added once every listed parent is done (or already retired), so a parent is
    always read to its end before its children. A done shard is retired once all its children
    are in the offset; a listed shard that is absent from the offset but has a descendant in it
    is therefore known to be retired and is never read again. Lost = unfinished shards that are
    no longer listed (past retention or stream deleted).
    """
    listed = {info.key: info for info in listing}
    children = _children(listing)
    lost = [k for k, s in states.items() if k not in listed and not s.done]
    out = {k: s for k, s in states.items() if k in listed}

    def parent_finished(parent: str) -> bool:
        if parent in out:
            return out[parent].done
        return parent not in listed or _has_descendant_in(parent, children, out)

    for key in sorted(listed):
        if key in out or _has_descendant_in(key, children, out):
            continue
        if all(parent_finished(p) for p in listed[key].parents):
            out[key] = ShardState(start)
    for key in [k for k, s in out.items() if s.done]:
        kids = children.get(key, [])
        if kids and all(kid in out for kid in kids):
            del out[key]
    return out, lost


def allocate(
    candidates: list[str], rotation: int, max_rows: int | None, max_bytes: int | None
) -> dict[str, tuple[int | None, int | None]]:
    """Split the batch's row/byte limits over the shards that have data.

    Shards beyond the limit (fewer rows than shards) get nothing this batch; ``rotation``
    shifts which shards come first so that none starves.
    """
    if not candidates:
        return {}
    shift = rotation % len(candidates)
    order = candidates[shift:] + candidates[:shift]
    k = len(order)
    budgets: dict[str, tuple[int | None, int | None]] = {}
    for i, key in enumerate(order):
        rows = None if max_rows is None else max_rows // k + (1 if i < max_rows % k else 0)
        size = None if max_bytes is None else max(1, max_bytes // k)
        if rows == 0:
            continue
        budgets[key] = (rows, size)
    return budgets


def next_offset(
    prev: Offset,
    resolved: Mapping[str, ShardState],
    states: dict[str, ShardState],
    budgets: Mapping[str, tuple[int | None, int | None]],
    until: int | None,
) -> Offset | None:
    """The next batch's offset, or None when ``prev`` still describes the state exactly.

    ``resolved`` is ``apply_outcomes(prev, ...)``: since outcome files are immutable, handing
    ``prev`` back to Spark (no new batch) loses nothing unless shards were added, retired or
    found finished (``states`` differs) or some shard has a budget.
    """
    shards = {
        key: replace(
            state,
            read=key in budgets,
            max_records=budgets[key][0] if key in budgets else None,
            max_bytes=budgets[key][1] if key in budgets else None,
        )
        for key, state in states.items()
    }
    unchanged = {k: (s.start, s.done) for k, s in resolved.items()} == {
        k: (s.start, s.done) for k, s in shards.items()
    }
    if not budgets and unchanged:
        return None
    return Offset(new_plan_id(prev.counter + 1), prev.start, until, shards)
