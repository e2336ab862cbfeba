"""The shard reads of every batch share one Kinesis client per connection per process."""

from __future__ import annotations

import pytest

from spark_jobs.sources.kinesis import client as kc
from spark_jobs.sources.kinesis.client import Connection, shared_client


@pytest.fixture(autouse=True)
def _creds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")


def test_one_client_per_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    shared_client.cache_clear()
    built: list[Connection] = []
    make = kc.make_client
    monkeypatch.setattr(kc, "make_client", lambda conn: built.append(conn) or make(conn))
    local = Connection("us-east-1", "http://127.0.0.1:4567")
    first = shared_client(local)
    assert shared_client(Connection("us-east-1", "http://127.0.0.1:4567")) is first  # equal
    other = shared_client(Connection("eu-west-1", "http://127.0.0.1:4567"))
    assert other is not first
    assert built == [local, Connection("eu-west-1", "http://127.0.0.1:4567")]  # built twice
    assert first.meta.endpoint_url == "http://127.0.0.1:4567"
    assert first.meta.region_name == "us-east-1" and other.meta.region_name == "eu-west-1"
    shared_client.cache_clear()
