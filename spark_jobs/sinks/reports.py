"""Small result documents (``dredge dq``'s GX result JSON) to a local path or ``s3://``.

On EMR the driver has no shared file system worth reading afterwards, so a report goes to S3
with one ``PutObject`` (the job role's credentials, the default chain; the endpoint follows
boto3's own settings such as ``AWS_ENDPOINT_URL_S3``). Anything else is a local or mounted path
(``/Volumes/...`` on Databricks), parents created.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlparse

S3_SCHEMES = ("s3", "s3a")


def is_s3(path: str) -> bool:
    """True for ``s3://`` and ``s3a://`` URIs."""
    return urlparse(path).scheme in S3_SCHEMES


def write_report(path: str, text: str, s3_client: Any = None) -> None:
    """Write ``text`` (UTF-8) to ``path``, replacing what is there.

    Args:
        path: a local path, or ``s3://bucket/key`` (``s3a://`` too).
        text: the document.
        s3_client: a boto3 S3 client to use (default: ``boto3.client("s3")``).

    Raises:
        ValueError: an S3 URI without a bucket or a key.
        OSError: a local write failed. S3 errors are boto3's own.
    """
    if not is_s3(path):
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
        return
    parsed = urlparse(path)
    key = parsed.path.lstrip("/")
    if not parsed.netloc or not key or key.endswith("/"):
        raise ValueError(f"{path}: expected s3://bucket/key")
    if s3_client is None:
        import boto3

        s3_client = boto3.client("s3")
    body = text.encode("utf-8")
    s3_client.put_object(Bucket=parsed.netloc, Key=key, Body=body, ContentType="application/json")
