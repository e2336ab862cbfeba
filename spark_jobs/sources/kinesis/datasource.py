# ruff: noqa: N802 - method names are fixed by the PySpark data source API
"""The ``dredge-kinesis`` streaming data source (PySpark 4.2 Python Data Source API).

Design: budgets on the driver, reached positions from the executors
-------------------------------------------------------------------
Kinesis cannot tell a shard's newest sequence number, so a naive source scans every shard on
the driver in ``latestOffset`` to find the batch end and the executors read it all again. Here
the driver only *plans* and executors *decide where a batch ends*:

1. ``latestOffset(start, limit)`` (driver) turns the previous offset into positions: for each
   shard read by the previous batch it loads that batch's **outcome file**
   ``<metadataPath>/<plan>/<stream>/<shard>.json`` (the last sequence number the executor
   read, written once by the executor) and moves the shard ``AFTER:`` it. It lists shards
   (resharding), peeks one record per shard that may have data (``GetRecords Limit=1``; skipped
   when the previous outcome already says "stopped on a budget, more data waiting" - except
   under AvailableNow), splits the ReadLimit into per-shard record/byte budgets and returns a
   new offset ``{plan id, until, per shard: from + budget}``. Spark writes it to its offset log
   *before* any task runs. Nothing new -> it returns ``start`` itself and Spark skips the batch.
2. ``read(partition)`` (executor, one task per shard) reads from ``from`` until the budget, the
   arrival-time cut ``until`` (the planning time; the AvailableNow target time), the shard tip
   or the end of a closed shard, yields Arrow batches, then creates the outcome file. If the
   file already exists (task retry, a second job over the same micro-batch, or the replay of a
   batch after a crash) it reads **exactly through the recorded sequence number** instead.
3. ``commit(end)`` only prunes old outcome folders.

Why this is exactly-once with Spark's logs: the offset log entry of batch N (plan id + start
positions + budgets) and the immutable outcome files of plan N together pin batch N's records.
Crash before any task finished -> Spark replays N from the offset log, tasks find no file and
read under the same budgets and cut (records beyond what a lost attempt saw may be included;
that attempt's output was never committed). Crash after the files were written but before
``commits/N`` -> the replay reads exactly up to the files: the same records. Batch N+1 starts
after what the files say, so nothing is skipped or read twice. The only cost on the driver is
one one-record GetRecords per idle shard per trigger.

Resharding: a child shard enters the offset only once all its listed parents are read to
their end (an executor reached the end of the closed shard, or a probe found nothing after the
position); a finished parent is retired once all its children are in the offset, and a listed
shard with a descendant in the offset is known to be retired, so it is never re-read.

Lag: Python data sources in 4.2 have no custom-metrics hook; ``reportLatestOffset`` returns
``{"millisBehindLatest": max, "shards": {shard: ms}}`` which Spark shows as the source's
``latestOffset`` in ``query.lastProgress``.

KPL: aggregated records are split into rows whose ``sequence_number`` is
``<seq>:<6-digit sub index>``; budgets and positions count whole Kinesis records.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

import pyarrow as pa
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError
from pyspark.sql.datasource import DataSource, DataSourceStreamReader, InputPartition
from pyspark.sql.streaming.datasource import (
    ReadAllAvailable,
    ReadLimit,
    ReadMaxBytes,
    ReadMaxRows,
    SupportsTriggerAvailableNow,
)
from pyspark.sql.types import StructType

from spark_jobs.sources.kinesis import offsets as ofs
from spark_jobs.sources.kinesis.client import make_client, shared_client, with_backoff
from spark_jobs.sources.kinesis.meta import MetaStore
from spark_jobs.sources.kinesis.options import KinesisOptions
from spark_jobs.sources.kinesis.reading import ReadSpec, ShardReader, probe, to_record_batch

LOG = logging.getLogger(__name__)
NAME = "dredge-kinesis"
SCHEMA_DDL = (
    "stream_name string, shard_id string, sequence_number string, partition_key string, "
    "approximate_arrival_timestamp timestamp, data binary"
)


def _now_ms() -> int:
    return int(time.time() * 1000)


class KinesisSourceError(RuntimeError):
    """The source cannot start or continue (missing stream, unreachable endpoint, lost state)."""


@dataclass(frozen=True)
class ShardPartition(InputPartition):
    """One Spark input partition: one shard of one batch."""

    key: str
    start: str
    max_records: int | None
    max_bytes: int | None
    until_ms: int | None
    plan: str


def list_shards(client: Any, stream: str) -> list[ofs.ShardInfo]:
    """All shards of ``stream`` (open and closed within retention), paginated."""
    out: list[ofs.ShardInfo] = []
    args: dict[str, Any] = {"StreamName": stream}
    while True:
        resp = with_backoff(client.list_shards, **args)
        for shard in resp["Shards"]:
            parents = [shard.get("ParentShardId"), shard.get("AdjacentParentShardId")]
            out.append(
                ofs.ShardInfo(
                    ofs.shard_key(stream, shard["ShardId"]),
                    tuple(ofs.shard_key(stream, p) for p in parents if p),
                    "EndingSequenceNumber" in shard.get("SequenceNumberRange", {}),
                )
            )
        token = resp.get("NextToken")
        if not token:
            return out
        args = {"NextToken": token}


class KinesisStreamReader(DataSourceStreamReader, SupportsTriggerAvailableNow):
    """Driver side plans budgets; ``read`` runs on executors (see the module docstring)."""

    def __init__(self, options: KinesisOptions) -> None:
        self.opts = options
        self._client: Any = None
        self._checked = False
        self._target_ms: int | None = None
        self._lag: dict[str, int] = {}

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_client"] = None
        return state

    def _kinesis(self) -> Any:
        if self._client is None:
            self._client = make_client(self.opts.connection)
        return self._client

    def _check(self) -> None:
        """Fail at query start, with a clear message, on a bad stream/endpoint/metadata path."""
        if self._checked:
            return
        conn = self.opts.connection
        where = f"region {conn.region}" + (
            f", endpoint {conn.endpoint_url}" if conn.endpoint_url else ""
        )
        client = make_client(conn, fast_fail=True)
        for stream in self.opts.streams:
            try:
                summary = client.describe_stream_summary(StreamName=stream)
            except NoCredentialsError:
                raise KinesisSourceError("no AWS credentials found in the default chain") from None
            except ClientError as exc:
                code = exc.response.get("Error", {}).get("Code")
                if code == "ResourceNotFoundException":
                    raise KinesisSourceError(
                        f"Kinesis stream {stream!r} not found ({where})"
                    ) from None
                raise KinesisSourceError(f"Kinesis stream {stream!r}: {code} ({where})") from None
            except BotoCoreError as exc:
                raise KinesisSourceError(f"cannot reach Kinesis ({where}): {exc}") from None
            status = summary["StreamDescriptionSummary"]["StreamStatus"]
            if status not in ("ACTIVE", "UPDATING"):
                raise KinesisSourceError(f"Kinesis stream {stream!r} is {status} ({where})")
        try:
            MetaStore(self.opts.metadata_path).ensure_writable()
        except OSError as exc:
            raise KinesisSourceError(f"metadataPath is not writable: {exc}") from None
        self._checked = True

    def _listing(self) -> list[ofs.ShardInfo]:
        return [info for s in self.opts.streams for info in list_shards(self._kinesis(), s)]

    def initialOffset(self) -> dict:
        self._check()
        start = ofs.parse_starting_position(self.opts.starting_position, _now_ms())
        states, _ = ofs.reconcile({}, self._listing(), start)
        return ofs.Offset(ofs.new_plan_id(0), start, None, states).to_json()

    def prepareForTriggerAvailableNow(self) -> None:
        self._target_ms = _now_ms()

    def getDefaultReadLimit(self) -> ReadLimit:
        if self.opts.max_records is not None:
            return ReadMaxRows(self.opts.max_records)
        if self.opts.max_bytes is not None:
            return ReadMaxBytes(self.opts.max_bytes)
        return ReadAllAvailable()

    def _limits(self, limit: ReadLimit) -> tuple[int | None, int | None]:
        if isinstance(limit, ReadAllAvailable):
            return None, None
        if isinstance(limit, ReadMaxRows):
            return limit.max_rows, self.opts.max_bytes
        if isinstance(limit, ReadMaxBytes):
            return self.opts.max_records, limit.max_bytes
        return self.opts.max_records, self.opts.max_bytes

    def _outcomes(self, prev: ofs.Offset) -> dict[str, ofs.Outcome]:
        meta = MetaStore(self.opts.metadata_path)
        outcomes: dict[str, ofs.Outcome] = {}
        for key, state in prev.shards.items():
            if not state.read:
                continue
            found = meta.read(prev.plan, key)
            if found is None:
                raise KinesisSourceError(
                    f"no outcome file for {key} of batch plan {prev.plan} under metadataPath "
                    f"{self.opts.metadata_path!r}: the metadata path was changed or deleted "
                    "while the checkpoint was kept"
                )
            outcomes[key] = found
        return outcomes

    def latestOffset(self, start: dict, limit: ReadLimit) -> dict:
        self._check()
        prev = ofs.Offset.from_json(start)
        outcomes = self._outcomes(prev)
        resolved = ofs.apply_outcomes(prev, outcomes)
        states, lost = ofs.reconcile(resolved, self._listing(), prev.start)
        for key in lost:
            LOG.warning("shard %s disappeared before it was fully read (retention?)", key)
        until = self._target_ms if self._target_ms is not None else _now_ms()
        candidates: list[str] = []
        for key, state in sorted(states.items()):
            if state.done:
                continue
            known = outcomes.get(key)
            if known is not None and known.millis_behind is not None:
                self._lag[key] = known.millis_behind
            if known is not None and known.more and self._target_ms is None:
                candidates.append(key)
                continue
            stream, shard_id = ofs.split_key(key)
            seen = probe(self._kinesis(), stream, shard_id, state.start, until)
            if seen.millis_behind is not None:
                self._lag[key] = seen.millis_behind
            if seen.ended:
                states[key] = replace(state, done=True)
            elif seen.has_data:
                candidates.append(key)
        self._lag = {k: v for k, v in self._lag.items() if k in states}
        rows, size = self._limits(limit)
        budgets = ofs.allocate(candidates, prev.counter, rows, size)
        nxt = ofs.next_offset(prev, resolved, states, budgets, until)
        return start if nxt is None else nxt.to_json()

    def reportLatestOffset(self) -> dict | None:
        if not self._lag:
            return None
        return {"millisBehindLatest": max(self._lag.values()), "shards": dict(self._lag)}

    def partitions(self, start: dict, end: dict) -> Sequence[InputPartition]:
        off = ofs.Offset.from_json(end)
        return [
            ShardPartition(key, s.start, s.max_records, s.max_bytes, off.until, off.plan)
            for key, s in sorted(off.shards.items())
            if s.read
        ]

    def read(self, partition: InputPartition) -> Iterator[pa.RecordBatch]:
        assert isinstance(partition, ShardPartition)
        meta = MetaStore(self.opts.metadata_path)
        stream, shard_id = ofs.split_key(partition.key)
        prior = meta.read(partition.plan, partition.key)
        spec = ReadSpec(
            stream,
            shard_id,
            partition.start,
            partition.max_records,
            partition.max_bytes,
            partition.until_ms,
            target=prior.last if prior else None,
            is_replay=prior is not None,
        )
        reader = ShardReader(shared_client(self.opts.connection), spec)
        for page in reader.pages():
            yield to_record_batch(stream, shard_id, page)
        if prior is None:
            assert reader.outcome is not None
            stored = meta.publish(partition.plan, partition.key, reader.outcome)
            if stored != reader.outcome:
                raise KinesisSourceError(
                    f"{partition.key}: another attempt of batch plan {partition.plan} recorded a "
                    "different end; failing this attempt so that the retry replays it exactly"
                )

    def commit(self, end: dict) -> None:
        MetaStore(self.opts.metadata_path).prune(ofs.Offset.from_json(end).plan)


class KinesisDataSource(DataSource):
    """``spark.readStream.format("dredge-kinesis")``; see the module docstring."""

    @classmethod
    def name(cls) -> str:
        return NAME

    def schema(self) -> str:
        KinesisOptions.parse(self.options)
        return SCHEMA_DDL

    def streamReader(self, schema: StructType) -> DataSourceStreamReader:
        return KinesisStreamReader(KinesisOptions.parse(self.options))
