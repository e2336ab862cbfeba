"""An in-process moto server (real HTTP, any credentials) for unit tests of boto3 code paths."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3
from moto.server import ThreadedMotoServer

REGION = "us-east-1"


@contextmanager
def moto_server() -> Iterator[str]:
    """Yields the server's URL; moto's state is reset on exit (its backends are process-wide)."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()  # returns once the server accepts requests
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    try:
        yield url
    finally:
        urllib.request.urlopen(urllib.request.Request(f"{url}/moto-api/reset", method="POST"))
        server.stop()


def moto_client(
    service: str,
    url: str,
    *,
    aws_access_key_id: str = "test",
    aws_secret_access_key: str = "test",
    aws_session_token: str | None = None,
) -> Any:
    """A boto3 client of ``service`` pointed at moto (dummy credentials unless given)."""
    return boto3.client(
        service,  # type: ignore[call-overload]
        endpoint_url=url,
        region_name=REGION,
        aws_access_key_id=aws_access_key_id,
        aws_secret_access_key=aws_secret_access_key,
        aws_session_token=aws_session_token,
    )
