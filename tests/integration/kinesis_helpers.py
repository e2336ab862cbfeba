"""Helpers for the Kinesis source integration tests (kinesalite at 127.0.0.1:4567)."""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from collections.abc import Callable
from typing import Any

import boto3

ENDPOINT = "http://127.0.0.1:4567"
REGION = "us-east-1"
CREATED: list[str] = []  # streams made by the running test; deleted at teardown (shard cap 50)


def set_dummy_credentials() -> None:
    os.environ["AWS_ACCESS_KEY_ID"] = "test"
    os.environ["AWS_SECRET_ACCESS_KEY"] = "test"
    os.environ["AWS_DEFAULT_REGION"] = REGION


def client(endpoint: str = ENDPOINT) -> Any:
    set_dummy_credentials()
    return boto3.client("kinesis", endpoint_url=endpoint, region_name=REGION)


def wait_for(predicate: Callable[[], Any], timeout: float = 60.0, every: float = 0.1) -> Any:
    """Poll ``predicate`` until it returns a truthy value (bounded)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise TimeoutError("condition not met in time")


def wait_active(kinesis: Any, stream: str) -> None:
    wait_for(
        lambda: (
            kinesis.describe_stream_summary(StreamName=stream)["StreamDescriptionSummary"][
                "StreamStatus"
            ]
            == "ACTIVE"
        )
    )


def create_stream(kinesis: Any, shards: int, prefix: str = "dredge-it") -> str:
    name = f"{prefix}-{uuid.uuid4().hex[:10]}"
    kinesis.create_stream(StreamName=name, ShardCount=shards)
    CREATED.append(name)
    wait_active(kinesis, name)
    return name


def hash_keys(kinesis: Any, stream: str) -> dict[str, int]:
    """Open shard id -> its starting hash key (to target a shard with ExplicitHashKey)."""
    shards = kinesis.list_shards(StreamName=stream)["Shards"]
    return {
        s["ShardId"]: int(s["HashKeyRange"]["StartingHashKey"])
        for s in shards
        if "EndingSequenceNumber" not in s["SequenceNumberRange"]
    }


def put(kinesis: Any, stream: str, payloads: list[bytes], spread: bool = True) -> list[str]:
    """Put records (spread over the open shards); returns their sequence numbers."""
    keys = sorted(hash_keys(kinesis, stream).values())
    seqs = []
    for i, data in enumerate(payloads):
        args: dict[str, Any] = {"StreamName": stream, "Data": data, "PartitionKey": f"pk-{i}"}
        if spread:
            args["ExplicitHashKey"] = str(keys[i % len(keys)])
        seqs.append(kinesis.put_record(**args)["SequenceNumber"])
    return seqs


def options(stream: str, metadata: str, **extra: str) -> dict[str, str]:
    out = {
        "streamName": stream,
        "region": REGION,
        "endpointUrl": ENDPOINT,
        "startingPosition": "TRIM_HORIZON",
        "metadataPath": metadata,
    }
    out.update(extra)
    return out


def delete_created(kinesis: Any) -> None:
    while CREATED:
        name = CREATED.pop()
        with contextlib.suppress(Exception):
            kinesis.delete_stream(StreamName=name, EnforceConsumerDeletion=True)
