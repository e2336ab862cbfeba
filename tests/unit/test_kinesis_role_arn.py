"""The ``roleArn`` option: the source's Kinesis client assumes the role via STS (moto server).

moto scopes assumed-role credentials to the role's account, so a stream created in that account
is visible only to a client that really signs with the assumed credentials.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from _moto import REGION, moto_client, moto_server
from botocore.exceptions import ClientError

from spark_jobs.sources.kinesis.client import _assumed_session, make_client
from spark_jobs.sources.kinesis.options import KinesisOptions

ROLE_ACCOUNT = "111111111111"  # moto's own default account is 123456789012
ROLE_ARN = f"arn:aws:iam::{ROLE_ACCOUNT}:role/dredge-kinesis-reader"


@pytest.fixture
def moto_url(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    with moto_server() as url:
        # client.py builds its STS client from the default chain and botocore's standard
        # settings (no endpoint option of its own): point STS at moto the standard way.
        monkeypatch.setenv("AWS_ENDPOINT_URL_STS", url)
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
        for name in ("AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_ENDPOINT_URL"):
            monkeypatch.delenv(name, raising=False)
        yield url


@pytest.fixture
def assume_role_calls(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Parameters of every AssumeRole made through boto3's default session (as client.py does)."""
    calls: list[dict[str, Any]] = []
    session = boto3.Session()
    session.events.register(
        "provide-client-params.sts.AssumeRole", lambda params, **_: calls.append(dict(params))
    )
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", session)
    return calls


def _stream_in_role_account(url: str, name: str) -> None:
    sts = moto_client("sts", url)
    creds = sts.assume_role(RoleArn=ROLE_ARN, RoleSessionName="test-setup")["Credentials"]
    kinesis = moto_client(
        "kinesis",
        url,
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
    )
    kinesis.create_stream(StreamName=name, ShardCount=2)
    kinesis.get_waiter("stream_exists").wait(
        StreamName=name, WaiterConfig={"Delay": 0.1, "MaxAttempts": 50}
    )


def test_role_arn_client_assumes_the_role_and_reads_the_role_accounts_stream(
    moto_url: str, assume_role_calls: list[dict[str, Any]]
) -> None:
    stream = f"flows-{uuid.uuid4().hex[:8]}"
    _stream_in_role_account(moto_url, stream)
    assume_role_calls.clear()  # only the source's own calls from here on
    _assumed_session.cache_clear()  # a fresh executor process
    opts = KinesisOptions.parse(
        {
            "streamname": stream,
            "REGION": REGION,
            "endpointUrl": moto_url,
            "rolearn": ROLE_ARN,
            "metadataPath": "/unused",
        }
    )
    assert opts.connection.role_arn == ROLE_ARN

    client = make_client(opts.connection)
    signed: list[bytes] = []
    client.meta.events.register(
        "before-send.kinesis", lambda request, **_: signed.append(request.headers["Authorization"])
    )

    assert assume_role_calls == [{"RoleArn": ROLE_ARN, "RoleSessionName": "dredge-kinesis"}]
    shards = client.list_shards(StreamName=stream)["Shards"]
    assert sorted(s["ShardId"] for s in shards) == [
        "shardId-000000000000",
        "shardId-000000000001",
    ]
    summary = client.describe_stream_summary(StreamName=stream)["StreamDescriptionSummary"]
    assert summary["StreamARN"] == f"arn:aws:kinesis:{REGION}:{ROLE_ACCOUNT}:stream/{stream}"
    assert summary["StreamStatus"] == "ACTIVE"
    # Signed with the temporary (ASIA...) key STS issued, never the caller's own "test" key.
    assert len(signed) == 2
    assert all(b"Credential=ASIA" in header for header in signed), signed
    # Every later partition in this process reuses the assumed (self-refreshing) session.
    make_client(opts.connection).list_shards(StreamName=stream)
    assert len(assume_role_calls) == 1

    # Control: the caller's own credentials (another account) do not see that stream, so the
    # reads above succeeded only through the assumed role.
    with pytest.raises(ClientError, match="ResourceNotFoundException"):
        moto_client("kinesis", moto_url).list_shards(StreamName=stream)


def test_without_role_arn_no_role_is_assumed(
    moto_url: str, assume_role_calls: list[dict[str, Any]]
) -> None:
    stream = f"flows-{uuid.uuid4().hex[:8]}"
    moto_client("kinesis", moto_url).create_stream(StreamName=stream, ShardCount=1)
    opts = KinesisOptions.parse(
        {"streamName": stream, "region": REGION, "endpointUrl": moto_url, "metadataPath": "/m"}
    )
    client = make_client(opts.connection, fast_fail=True)
    summary = client.describe_stream_summary(StreamName=stream)["StreamDescriptionSummary"]
    assert summary["StreamARN"].split(":")[4] == "123456789012"
    assert assume_role_calls == []
