"""Outcome files: what each executor reached, under the source's ``metadataPath``.

Layout: ``<metadataPath>/<plan id>/<stream>/<shardId>.json``. A file is created at most once
(local: hard-link of a temp file, which fails if the name exists; S3: ``If-None-Match: *``),
so the first finished task attempt of a batch fixes that batch's records for good; any later
attempt, retry or replay reads exactly up to it.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from typing import Any
from urllib.parse import urlparse

from spark_jobs.sources.kinesis.offsets import Outcome, split_key

RETAINED_PLANS = 10


class MetaStore:
    """Create-once outcome files on a local/shared file system or S3."""

    def __init__(self, root: str, s3_client: Any = None) -> None:
        parsed = urlparse(root)
        self.is_s3 = parsed.scheme in ("s3", "s3a")
        self.bucket = parsed.netloc
        if self.is_s3:
            self.root = parsed.path.strip("/")
        else:
            self.root = parsed.path if parsed.scheme == "file" else root
        self._s3 = s3_client

    def _s3_client(self) -> Any:
        if self._s3 is None:
            import boto3

            self._s3 = boto3.client("s3")
        return self._s3

    def _rel(self, plan: str, key: str) -> str:
        stream, shard_id = split_key(key)
        return f"{plan}/{stream}/{shard_id}.json"

    def _s3_key(self, rel: str) -> str:
        # ``s3://bucket`` has an empty root: no leading "/" (an empty first path segment)
        return f"{self.root}/{rel}" if self.root else rel

    def read(self, plan: str, key: str) -> Outcome | None:
        rel = self._rel(plan, key)
        if self.is_s3:
            try:
                body = self._s3_client().get_object(Bucket=self.bucket, Key=self._s3_key(rel))
            except self._s3_client().exceptions.NoSuchKey:
                return None
            return Outcome.from_json(body["Body"].read().decode())
        path = os.path.join(self.root, rel)
        if not os.path.exists(path):
            return None
        with open(path, encoding="utf-8") as handle:
            return Outcome.from_json(handle.read())

    def publish(self, plan: str, key: str, outcome: Outcome) -> Outcome:
        """Store ``outcome`` unless one exists already; returns the stored one."""
        rel = self._rel(plan, key)
        if self.is_s3:
            from botocore.exceptions import ClientError

            try:
                self._s3_client().put_object(
                    Bucket=self.bucket,
                    Key=self._s3_key(rel),
                    Body=outcome.to_json().encode(),
                    IfNoneMatch="*",
                )
                return outcome
            except ClientError:
                stored = self.read(plan, key)
                if stored is None:
                    raise
                return stored
        path = os.path.join(self.root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".tmp-")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(outcome.to_json())
                handle.flush()
                os.fsync(handle.fileno())
            os.link(tmp, path)
        except FileExistsError:
            stored = self.read(plan, key)
            assert stored is not None
            return stored
        finally:
            os.unlink(tmp)
        return outcome

    def prune(self, committed_plan: str) -> None:
        """Drop outcome folders of plans older than the last ``RETAINED_PLANS`` batches."""
        keep_from = int(committed_plan.split("-", 1)[0]) - RETAINED_PLANS
        if self.is_s3 or not os.path.isdir(self.root):
            return  # S3: left to a bucket lifecycle rule on the metadata prefix
        for name in os.listdir(self.root):
            head = name.split("-", 1)[0]
            if head.isdigit() and int(head) < keep_from:
                shutil.rmtree(os.path.join(self.root, name), ignore_errors=True)

    def _probe_s3(self) -> None:
        """Write and delete a probe object: a wrong bucket or missing permission fails the
        query at start instead of when executors publish."""
        from botocore.exceptions import BotoCoreError, ClientError

        key = self._s3_key(f".probe-{uuid.uuid4().hex}")
        try:
            self._s3_client().put_object(Bucket=self.bucket, Key=key, Body=b"")
            self._s3_client().delete_object(Bucket=self.bucket, Key=key)
        except (ClientError, BotoCoreError) as exc:
            raise OSError(f"cannot write s3://{self.bucket}/{key}: {exc}") from exc

    def ensure_writable(self) -> None:
        """Fail early (at query start) when the metadata path cannot be written."""
        if self.is_s3:
            self._probe_s3()
            return
        os.makedirs(self.root, exist_ok=True)
        probe = tempfile.NamedTemporaryFile(dir=self.root, prefix=".probe-")  # noqa: SIM115
        probe.close()
