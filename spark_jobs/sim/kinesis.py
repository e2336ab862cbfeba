"""Put envelopes into a Kinesis stream with PutRecords, within the API and shard limits.

Batches hold at most 500 records and 5 MiB (data plus partition keys); entries that fail
(throttling, internal errors) are retried with exponential backoff; the send rate is kept
under the stream's write limits (1000 records/s and 1 MiB/s per shard) when ``throttle``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.exceptions import ClientError

from spark_jobs.sim.envelopes import Envelope

MAX_BATCH_RECORDS = 500
MAX_BATCH_BYTES = 5 * 1024 * 1024
MAX_RECORD_BYTES = 1024 * 1024
SHARD_RECORDS_PER_S = 1000
SHARD_BYTES_PER_S = 1024 * 1024
MAX_ATTEMPTS = 10
_RETRYABLE = ("ProvisionedThroughputExceededException", "ThrottlingException", "InternalFailure",
              "ServiceUnavailable", "LimitExceededException")  # fmt: skip


def kinesis_client(region: str, endpoint_url: str | None) -> Any:
    """A boto3 Kinesis client (default credential chain)."""
    return boto3.client("kinesis", region_name=region, endpoint_url=endpoint_url)


def ensure_stream(client: Any, stream: str, shards: int, timeout_s: float = 60.0) -> None:
    """Create ``stream`` with ``shards`` shards if absent; wait (bounded) until ACTIVE."""
    try:
        client.describe_stream_summary(StreamName=stream)
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ResourceNotFoundException":
            raise
        client.create_stream(StreamName=stream, ShardCount=shards)
    deadline = time.monotonic() + timeout_s
    delay = 0.05
    while True:
        summary = client.describe_stream_summary(StreamName=stream)["StreamDescriptionSummary"]
        if summary["StreamStatus"] == "ACTIVE":
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"stream {stream} not ACTIVE after {timeout_s}s")
        time.sleep(delay)
        delay = min(delay * 2, 1.0)


@dataclass
class PutStats:
    """What a sink sent."""

    records: int = 0
    bytes: int = 0
    calls: int = 0
    retried_entries: int = 0


class KinesisSink:
    """An :class:`~spark_jobs.sim.envelopes.EnvelopeSink` writing to a Kinesis stream."""

    def __init__(self, client: Any, stream: str, shards: int, throttle: bool = True) -> None:
        self.client = client
        self.stream = stream
        self.shards = max(1, shards)
        self.throttle = throttle
        self.stats = PutStats()
        self._batch: list[dict[str, Any]] = []
        self._batch_bytes = 0
        self._next_send = time.monotonic()

    def put(self, envelopes: list[Envelope]) -> None:
        """Queue envelopes; full batches are sent at once."""
        for e in envelopes:
            if len(e.data) > MAX_RECORD_BYTES:
                raise ValueError(f"envelope of {len(e.data)} bytes exceeds the record limit")
            size = len(e.data) + len(e.partition_key.encode())
            if len(self._batch) >= MAX_BATCH_RECORDS or self._batch_bytes + size > MAX_BATCH_BYTES:
                self.flush()
            self._batch.append({"Data": e.data, "PartitionKey": e.partition_key})
            self._batch_bytes += size

    def flush(self) -> None:
        """Send the queued batch (retrying failed entries)."""
        if not self._batch:
            return
        entries, size = self._batch, self._batch_bytes
        self._batch, self._batch_bytes = [], 0
        self._pace(len(entries), size)
        n_total = len(entries)
        for attempt in range(MAX_ATTEMPTS):
            failed = self._send(entries)
            if not failed:
                break
            self.stats.retried_entries += len(failed)
            time.sleep(min(5.0, 0.1 * 2**attempt))
            entries = failed
        else:
            raise RuntimeError(f"{len(entries)} records still failing after {MAX_ATTEMPTS} tries")
        self.stats.records += n_total
        self.stats.bytes += size

    def _send(self, entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """One PutRecords call; returns the entries to retry."""
        self.stats.calls += 1
        try:
            resp = self.client.put_records(StreamName=self.stream, Records=entries)
        except ClientError as exc:
            if exc.response["Error"]["Code"] in _RETRYABLE:
                return entries
            raise
        results = resp["Records"]
        return [e for e, r in zip(entries, results, strict=True) if "ErrorCode" in r]

    def _pace(self, n_records: int, n_bytes: int) -> None:
        if not self.throttle:
            return
        now = time.monotonic()
        if self._next_send > now:
            time.sleep(self._next_send - now)
        cost = max(n_records / (SHARD_RECORDS_PER_S * self.shards),
                   n_bytes / (SHARD_BYTES_PER_S * self.shards))  # fmt: skip
        self._next_send = max(now, self._next_send) + cost

    def close(self) -> None:
        """Send what is left."""
        self.flush()
