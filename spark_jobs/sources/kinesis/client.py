"""boto3 plumbing for the Kinesis source: clients, backoff, pacing and one shard's read loop.

Throttling (``ProvisionedThroughputExceededException``, ``LimitExceededException``) is retried
forever with full-jitter exponential backoff (capped): a throttled query slows down, it never
fails. An expired iterator is re-acquired ``AFTER_SEQUENCE_NUMBER`` the last record read. Each
shard reader keeps to 5 GetRecords calls per second.
"""

from __future__ import annotations

import functools
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
from botocore.config import Config
from botocore.credentials import RefreshableCredentials
from botocore.exceptions import ClientError
from botocore.session import get_session

from spark_jobs.sources.kinesis.offsets import AFTER, AT_TIMESTAMP, TRIM_HORIZON

LOG = logging.getLogger(__name__)
THROTTLE_CODES = frozenset(
    {"ProvisionedThroughputExceededException", "LimitExceededException", "ThrottlingException"}
)
MIN_CALL_INTERVAL_S = 0.2  # Kinesis allows 5 GetRecords calls per second per shard
MAX_GET_RECORDS = 10_000
MAX_EMPTY_POLLS = 25  # empty pages while "behind": give up for this batch, resume next one


@dataclass(frozen=True)
class Connection:
    """Where and as whom to call Kinesis (never credentials: the default chain or a role)."""

    region: str
    endpoint_url: str | None = None
    role_arn: str | None = None


_SESSION_LOCK = threading.Lock()


@functools.lru_cache(maxsize=16)
def _assumed_session(region: str, role_arn: str) -> boto3.Session:
    """One assumed-role session per (region, role) per process: its credentials refresh
    themselves before expiry, so every shard partition of every batch reuses them (one
    AssumeRole per executor process, not one per shard per batch)."""
    sts = boto3.client("sts", region_name=region)

    def refresh() -> dict[str, str]:
        creds = sts.assume_role(RoleArn=role_arn, RoleSessionName="dredge-kinesis")["Credentials"]
        return {
            "access_key": creds["AccessKeyId"],
            "secret_key": creds["SecretAccessKey"],
            "token": creds["SessionToken"],
            "expiry_time": creds["Expiration"].isoformat(),
        }

    core = get_session()
    core._credentials = RefreshableCredentials.create_from_metadata(  # type: ignore[attr-defined]
        metadata=refresh(), refresh_using=refresh, method="sts-assume-role"
    )
    return boto3.Session(botocore_session=core, region_name=region)


def make_client(conn: Connection, *, fast_fail: bool = False) -> Any:
    """A Kinesis client; ``fast_fail`` for start-up checks (short timeouts, one retry)."""
    config = Config(
        retries={"mode": "standard", "max_attempts": 2 if fast_fail else 3},
        connect_timeout=3 if fast_fail else 10,
        read_timeout=10 if fast_fail else 60,
    )
    if not conn.role_arn:
        session = boto3.Session(region_name=conn.region)
        return session.client("kinesis", endpoint_url=conn.endpoint_url, config=config)
    with _SESSION_LOCK:  # a shared boto3 session must not build clients concurrently
        session = _assumed_session(conn.region, conn.role_arn)
        return session.client("kinesis", endpoint_url=conn.endpoint_url, config=config)


@functools.lru_cache(maxsize=8)
def shared_client(conn: Connection) -> Any:
    """One Kinesis client per connection per process, for the shard reads that every batch
    runs in the (reused) Python workers: building a client loads botocore's models, which
    would otherwise be paid per shard per batch. boto3 clients are thread-safe and refresh
    temporary credentials (instance profile, assumed role) themselves."""
    return make_client(conn)


def error_code(exc: BaseException) -> str | None:
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code"))
    return None


def with_backoff(
    call: Callable[..., Any],
    *,
    sleep: Callable[[float], None] = time.sleep,
    base_s: float = 0.05,
    cap_s: float = 5.0,
    **kwargs: Any,
) -> Any:
    """``call(**kwargs)``, retrying throttling errors forever with full-jitter backoff."""
    attempt = 0
    while True:
        try:
            return call(**kwargs)
        except ClientError as exc:
            if error_code(exc) not in THROTTLE_CODES:
                raise
            delay = random.uniform(0, min(cap_s, base_s * 2**attempt))
            attempt += 1
            LOG.info("kinesis throttled (%s), retry %d in %.2fs", error_code(exc), attempt, delay)
            sleep(delay)


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def shard_iterator(client: Any, stream: str, shard_id: str, position: str) -> str:
    """An iterator at ``position`` (TRIM_HORIZON, AT_TIMESTAMP:<ms> or AFTER:<seq>)."""
    args: dict[str, Any] = {"StreamName": stream, "ShardId": shard_id}
    if position == TRIM_HORIZON:
        args["ShardIteratorType"] = TRIM_HORIZON
    elif position.startswith(AT_TIMESTAMP):
        millis = int(position[len(AT_TIMESTAMP) :])
        args["ShardIteratorType"] = "AT_TIMESTAMP"
        # Exact milliseconds (no float rounding): Kinesis includes records that arrived at or
        # after this instant, at millisecond precision.
        args["Timestamp"] = EPOCH + timedelta(milliseconds=millis)
    elif position.startswith(AFTER):
        args["ShardIteratorType"] = "AFTER_SEQUENCE_NUMBER"
        args["StartingSequenceNumber"] = position[len(AFTER) :]
    else:
        raise ValueError(f"unknown shard position {position!r}")
    return str(with_backoff(client.get_shard_iterator, **args)["ShardIterator"])


def arrival_ms(record: dict[str, Any]) -> int:
    return int(record["ApproximateArrivalTimestamp"].timestamp() * 1000)


class Pacer:
    """Keeps consecutive calls at least ``interval`` seconds apart."""

    def __init__(self, interval: float = MIN_CALL_INTERVAL_S) -> None:
        self.interval = interval
        self._last = float("-inf")

    def wait(self) -> None:
        delay = self._last + self.interval - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        self._last = time.monotonic()


class DataLossError(RuntimeError):
    """Records a replay must return are no longer in the shard (past retention)."""
