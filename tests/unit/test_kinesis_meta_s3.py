"""MetaStore (the Kinesis source's create-once outcome files) on a local folder and on S3 (moto).

Every public method runs against each root. moto honours ``If-None-Match: *`` on PutObject
(412 PreconditionFailed when the key exists), so create-once is tested on S3 end to end.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from _moto import moto_client, moto_server
from botocore.exceptions import ClientError

from spark_jobs.sources.kinesis.meta import RETAINED_PLANS, MetaStore
from spark_jobs.sources.kinesis.offsets import Outcome, new_plan_id

BIG_SEQ = "49590338271490256608559692538361571095921575989136588898"  # > 64 bits
KEY = "flow-logs.prod/shardId-000000000001"
FIRST = Outcome(BIG_SEQ, 3, more=True, millis_behind=1200)
SECOND = Outcome("49590338271490256608559692538361571095921575989136588999", 7, ended=True)


@dataclass
class Case:
    """A store under test and a way to list what it wrote (paths relative to its root)."""

    store: MetaStore
    stored: Callable[[], set[str]]


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    with moto_server() as url:
        yield url


def _local_case(root: Path) -> Case:
    def stored() -> set[str]:
        return {
            str(path.relative_to(root))
            for path in root.rglob("*")
            if path.is_file() and not path.name.startswith(".")
        }

    return Case(MetaStore(str(root)), stored)


def _s3_case(s3: Any, bucket: str, prefix: str) -> Case:
    root = f"s3://{bucket}/{prefix}" if prefix else f"s3://{bucket}"
    head = f"{prefix.strip('/')}/" if prefix else ""

    def stored() -> set[str]:
        listing = s3.list_objects_v2(Bucket=bucket).get("Contents", [])
        keys = {item["Key"] for item in listing}
        assert all(k.startswith(head) for k in keys), keys  # nothing outside the root
        return {k[len(head) :] for k in keys}

    return Case(MetaStore(root, s3_client=s3), stored)


@pytest.fixture(params=["local", "s3-prefix", "s3-bucket-root"])
def case(request: pytest.FixtureRequest, tmp_path: Path) -> Case:
    if request.param == "local":
        return _local_case(tmp_path / "meta")
    s3 = moto_client("s3", request.getfixturevalue("moto_url"))
    bucket = f"dredge-meta-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=bucket)
    prefix = "checkpoints/q1/sources/kinesis/" if request.param == "s3-prefix" else ""
    return _s3_case(s3, bucket, prefix)


def test_read_of_a_missing_outcome_is_none(case: Case) -> None:
    assert case.store.read(new_plan_id(1), KEY) is None
    case.store.publish(new_plan_id(1), KEY, FIRST)
    assert case.store.read(new_plan_id(2), KEY) is None  # same shard, other plan
    assert case.store.read(new_plan_id(1), "flow-logs.prod/shardId-000000000002") is None


def test_publish_then_read_returns_the_outcome_at_the_documented_path(case: Case) -> None:
    plan = new_plan_id(4)
    assert case.store.publish(plan, KEY, FIRST) == FIRST
    assert case.store.read(plan, KEY) == FIRST
    assert case.store.read(plan, KEY).last == BIG_SEQ  # type: ignore[union-attr]
    assert case.stored() == {f"{plan}/flow-logs.prod/shardId-000000000001.json"}


def test_second_publish_returns_the_first_outcome_and_does_not_overwrite(case: Case) -> None:
    plan = new_plan_id(5)
    case.store.publish(plan, KEY, FIRST)
    assert case.store.publish(plan, KEY, SECOND) == FIRST
    assert case.store.read(plan, KEY) == FIRST
    assert len(case.stored()) == 1
    other = new_plan_id(6)
    assert case.store.publish(other, KEY, SECOND) == SECOND  # create-once is per (plan, key)
    assert case.store.read(plan, KEY) == FIRST


def test_racing_local_publishes_all_get_the_single_stored_outcome(tmp_path: Path) -> None:
    # Local only: moto checks If-None-Match and then stores in two steps (not atomic, unlike
    # S3), so a race against moto would test moto.
    store = MetaStore(str(tmp_path))
    plan = new_plan_id(7)
    candidates = [Outcome(str(10**30 + i), i + 1) for i in range(8)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda o: store.publish(plan, KEY, o), candidates))
    stored = store.read(plan, KEY)
    assert stored in candidates
    assert results == [stored] * len(candidates)


def test_prune_keeps_the_last_retained_plans(case: Case) -> None:
    plans = [new_plan_id(counter) for counter in range(1, 31)]
    for plan in plans:
        case.store.publish(plan, KEY, FIRST)
    committed = plans[-1]
    case.store.prune(committed)
    kept = plans[-(RETAINED_PLANS + 1) :]  # the committed plan and the RETAINED_PLANS before it
    for plan in kept:
        assert case.store.read(plan, KEY) == FIRST
    old = plans[: -(RETAINED_PLANS + 1)]
    if case.store.is_s3:
        # By design S3 is not listed and deleted from executors/driver: a bucket lifecycle rule
        # on the metadata prefix expires old plans (meta.py). Nothing may go missing here.
        assert all(case.store.read(plan, KEY) == FIRST for plan in old)
    else:
        assert all(case.store.read(plan, KEY) is None for plan in old)
        assert {p.split("/", 1)[0] for p in case.stored()} == set(kept)


def test_ensure_writable_accepts_a_usable_root_and_leaves_nothing(case: Case) -> None:
    case.store.ensure_writable()
    assert case.stored() == set()
    if not case.store.is_s3:
        assert os.path.isdir(case.store.root)
    case.store.publish(new_plan_id(1), KEY, FIRST)  # the root really is usable


def test_s3_publish_to_a_missing_bucket_raises(moto_url: str) -> None:
    store = MetaStore(f"s3://no-such-bucket-{uuid.uuid4().hex[:8]}/m", moto_client("s3", moto_url))
    with pytest.raises(ClientError, match="NoSuchBucket"):
        store.publish(new_plan_id(1), KEY, FIRST)


def test_s3_ensure_writable_fails_early_on_a_missing_bucket(moto_url: str) -> None:
    # The source's start-up check catches OSError and fails the query with the path named.
    bucket = f"no-such-bucket-{uuid.uuid4().hex[:8]}"
    store = MetaStore(f"s3://{bucket}/m", moto_client("s3", moto_url))
    with pytest.raises(OSError, match=f"cannot write s3://{bucket}/m/.probe-"):
        store.ensure_writable()


def test_s3_store_without_an_injected_client_uses_the_standard_aws_config(
    moto_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Executors build MetaStore(path) without a client: the default chain and botocore's usual
    # settings (here the standard per-service endpoint variable) must reach it.
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", moto_url)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    bucket = f"dredge-meta-{uuid.uuid4().hex[:12]}"
    moto_client("s3", moto_url).create_bucket(Bucket=bucket)
    store = MetaStore(f"s3a://{bucket}/meta/")
    plan = new_plan_id(3)
    assert store.publish(plan, KEY, FIRST) == FIRST
    assert store.publish(plan, KEY, SECOND) == FIRST
    assert MetaStore(f"s3://{bucket}/meta").read(plan, KEY) == FIRST
