"""Reading one shard: the executor's budgeted/exact read loop, the driver's probe, Arrow output."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from spark_jobs.sources.kinesis import kpl
from spark_jobs.sources.kinesis.client import (
    MAX_EMPTY_POLLS,
    MAX_GET_RECORDS,
    DataLossError,
    Pacer,
    arrival_ms,
    error_code,
    shard_iterator,
    with_backoff,
)
from spark_jobs.sources.kinesis.offsets import AFTER, Outcome

ARROW_SCHEMA = pa.schema(
    [
        ("stream_name", pa.string()),
        ("shard_id", pa.string()),
        ("sequence_number", pa.string()),
        ("partition_key", pa.string()),
        ("approximate_arrival_timestamp", pa.timestamp("us", tz="UTC")),
        ("data", pa.binary()),
    ]
)


@dataclass(frozen=True)
class ReadSpec:
    """One shard's read for one batch.

    ``target`` set (a replay): read exactly through that sequence number, ignoring budgets.
    ``target`` None: read until a budget, the arrival cut ``until_ms``, the tip or the end.
    """

    stream: str
    shard_id: str
    start: str
    max_records: int | None = None
    max_bytes: int | None = None
    until_ms: int | None = None
    target: str | None = None
    is_replay: bool = False


class ShardReader:
    """Iterates GetRecords pages of one shard; ``outcome`` is set once iteration finishes."""

    def __init__(self, client: Any, spec: ReadSpec, pacer: Pacer | None = None) -> None:
        self.client = client
        self.spec = spec
        self.pacer = pacer or Pacer()
        self.outcome: Outcome | None = None
        self._last: str | None = None

    def _get_records(self, iterator: str, limit: int) -> tuple[dict[str, Any], str]:
        while True:
            self.pacer.wait()
            try:
                resp = with_backoff(self.client.get_records, ShardIterator=iterator, Limit=limit)
                return resp, iterator
            except Exception as exc:
                if error_code(exc) != "ExpiredIteratorException":
                    raise
                position = f"{AFTER}{self._last}" if self._last else self.spec.start
                iterator = shard_iterator(
                    self.client, self.spec.stream, self.spec.shard_id, position
                )

    def _take(self, records: list[dict[str, Any]], count: int, size: int) -> tuple[int, bool]:
        """How many of ``records`` this batch takes, and whether it stops after them."""
        spec = self.spec
        if spec.is_replay:
            target = int(spec.target or 0)
            for i, rec in enumerate(records):
                seq = int(rec["SequenceNumber"])
                if seq == target:
                    return i + 1, True
                if seq > target:
                    raise DataLossError(f"{spec.stream}/{spec.shard_id}: record {target} is gone")
            return len(records), False
        for i, rec in enumerate(records):
            if spec.until_ms is not None and arrival_ms(rec) > spec.until_ms:
                return i, True
            if spec.max_records is not None and count + i >= spec.max_records:
                return i, True
            size += len(rec["Data"]) + len(rec["PartitionKey"])
            if spec.max_bytes is not None and size > spec.max_bytes and count + i > 0:
                return i, True
        return len(records), False

    def pages(self) -> Iterator[list[dict[str, Any]]]:
        spec = self.spec
        count = size = empty = 0
        ended = more = False
        millis: int | None = None
        if spec.is_replay and spec.target is None:
            self.outcome = Outcome(None)
            return
        iterator = shard_iterator(self.client, spec.stream, spec.shard_id, spec.start)
        while True:
            remaining = MAX_GET_RECORDS if spec.max_records is None else spec.max_records - count
            if remaining <= 0 and not spec.is_replay:
                break
            limit = MAX_GET_RECORDS if spec.is_replay else min(MAX_GET_RECORDS, remaining)
            resp, iterator = self._get_records(iterator, limit)
            records = resp.get("Records", [])
            millis = resp.get("MillisBehindLatest", millis)
            n, stop = self._take(records, count, size)
            if n:
                taken = records[:n]
                count += n
                size += sum(len(r["Data"]) + len(r["PartitionKey"]) for r in taken)
                self._last = str(taken[-1]["SequenceNumber"])
                yield taken
            if stop:
                more = n < len(records) or spec.max_records == count
                break
            nxt = resp.get("NextShardIterator")
            if nxt is None:
                ended = True
                break
            if records and millis == 0 and not spec.is_replay:
                # Caught up: this page reached the tip and every record on it was taken. A
                # further call (each paced by the per-shard call limit) could only find records
                # that arrived after the read began, which the next batch reads anyway. A shard that has
                # ended meanwhile is found by the driver's probe of the next batch.
                break
            iterator = nxt
            empty = 0 if records else empty + 1
            # "caught up" needs two empty pages in a row: at the end of a *closed* shard the
            # first empty page still carries an iterator and only the next one says the shard
            # ended (NextShardIterator null) - stopping early hid the end and kept the
            # children of a split/merge from ever being admitted.
            if not records and ((not millis and empty >= 2) or empty > MAX_EMPTY_POLLS):
                if spec.is_replay:
                    raise DataLossError(f"{spec.stream}/{spec.shard_id}: {spec.target} not found")
                more = empty > MAX_EMPTY_POLLS
                break
        self.outcome = Outcome(self._last, count, ended, more, millis)


@dataclass(frozen=True)
class Probe:
    """What the driver learnt from peeking at a shard."""

    has_data: bool
    ended: bool = False
    millis_behind: int | None = None


def probe(client: Any, stream: str, shard_id: str, start: str, until_ms: int | None) -> Probe:
    """Does the shard hold a record after ``start`` that arrived by ``until_ms``? (1 record read)"""
    iterator = shard_iterator(client, stream, shard_id, start)
    millis: int | None = None
    for attempt in range(MAX_EMPTY_POLLS):
        try:
            resp = with_backoff(client.get_records, ShardIterator=iterator, Limit=1)
        except Exception as exc:
            if error_code(exc) != "ExpiredIteratorException":
                raise
            iterator = shard_iterator(client, stream, shard_id, start)
            continue
        millis = resp.get("MillisBehindLatest", millis)
        records = resp.get("Records", [])
        if records:
            fresh = until_ms is None or arrival_ms(records[0]) <= until_ms
            return Probe(fresh, False, millis)
        if resp.get("NextShardIterator") is None:
            return Probe(False, True, millis)
        if not millis and attempt >= 1:  # two empty pages: see ShardReader.pages
            return Probe(False, False, millis)
        iterator = resp["NextShardIterator"]
    return Probe(True, False, millis)


def _sub_records(blob: bytes) -> list[kpl.SubRecord] | None:
    """A KPL aggregate's sub-records, None for a plain record.

    An aggregate whose body does not decode despite its matching digest passes on whole, as
    the KCL's de-aggregator does: decoding then quarantines it, where raising here would fail
    the query on every retry of the batch.
    """
    try:
        return kpl.decode(blob)
    except (kpl.KplDecodeError, UnicodeDecodeError):
        return None


def to_record_batch(stream: str, shard_id: str, records: list[dict[str, Any]]) -> pa.RecordBatch:
    """One Arrow batch in the source schema; KPL aggregates become one row per sub-record."""
    seqs: list[str] = []
    keys: list[str] = []
    times: list[int] = []
    blobs: list[bytes] = []
    for rec in records:
        seq = str(rec["SequenceNumber"])
        micros = int(rec["ApproximateArrivalTimestamp"].timestamp() * 1_000_000)
        subs = _sub_records(rec["Data"])
        if subs is None:
            seqs.append(seq)
            keys.append(rec["PartitionKey"])
            times.append(micros)
            blobs.append(rec["Data"])
            continue
        for i, sub in enumerate(subs):
            seqs.append(kpl.sub_sequence_number(seq, i))
            keys.append(sub.partition_key)
            times.append(micros)
            blobs.append(sub.data)
    n = len(seqs)
    columns = [
        pa.array([stream] * n, pa.string()),
        pa.array([shard_id] * n, pa.string()),
        pa.array(seqs, pa.string()),
        pa.array(keys, pa.string()),
        pa.array(times, pa.timestamp("us", tz="UTC")),
        pa.array(blobs, pa.binary()),
    ]
    return pa.RecordBatch.from_arrays(columns, schema=ARROW_SCHEMA)
