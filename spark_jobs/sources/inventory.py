"""The live AWS inventory: EC2 network interfaces of every configured account and region.

Credentials come from the default chain; other accounts are entered with STS AssumeRole using a
role ARN template (``arn:aws:iam::{account_id}:role/...``). Each (account, region) is a *scope*
that succeeds or fails on its own: a failed scope contributes no rows and is not covered, so the
SCD2 apply closes nothing in it. The observation time is the start of the sweep.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import boto3
import pandas as pd
from botocore.config import Config
from pyspark.sql import SparkSession

from spark_jobs.sources.inventory_rows import eni_rows, tags_of
from spark_jobs.sources.ownership import LabelRow, label_row
from spark_jobs.transforms.ownership import OWNER_COLUMNS, Observation

log = logging.getLogger(__name__)
ROW_COLUMNS = ("ip", *OWNER_COLUMNS, "source")
_FILTER_CHUNK = 200
UNKNOWN_ACCOUNT = "unknown"  # the scope name of the caller's account when STS cannot say
_ScopeOut = tuple[list[dict[str, str | None]], list[LabelRow], int]


@dataclass(frozen=True)
class InventoryConfig:
    """What to sweep. ``accounts`` empty = the caller's own account, without AssumeRole."""

    regions: tuple[str, ...] = ("us-east-1",)
    accounts: tuple[str, ...] = ()
    role_arn_template: str = "arn:aws:iam::{account_id}:role/dredge-inventory-reader"
    app_tags: tuple[str, ...] = ("app",)
    cluster_tags: tuple[str, ...] = ("cluster",)
    endpoint_url: str | None = None
    session_name: str = "dredge-refresh-ownership"
    max_attempts: int = 5
    max_workers: int = 4
    include_vpc_cidrs: bool = True
    # without MaxResults EC2 answers Describe* in one unpaginated call, which AWS warns is
    # prone to throttling and timeouts on large estates; 5..1000 are accepted
    page_size: int = 1000


@dataclass(frozen=True)
class ScopeResult:
    """Outcome of one (account, region): ``error`` is None on success."""

    account_id: str
    region: str
    interfaces: int = 0
    error: str | None = None


@dataclass(frozen=True)
class InventoryResult:
    """Rows of every successful scope, the outcome of every scope, and VPC/subnet labels."""

    observed_at: datetime
    rows: list[dict[str, str | None]] = field(default_factory=list)
    scopes: tuple[ScopeResult, ...] = ()
    labels: list[LabelRow] = field(default_factory=list)

    @property
    def failed(self) -> tuple[ScopeResult, ...]:
        """The scopes that failed."""
        return tuple(s for s in self.scopes if s.error is not None)


def _client(
    creds: Mapping[str, str] | None, service: str, region: str, cfg: InventoryConfig
) -> Any:
    session: Any = boto3.Session(
        aws_access_key_id=(creds or {}).get("aws_access_key_id"),
        aws_secret_access_key=(creds or {}).get("aws_secret_access_key"),
        aws_session_token=(creds or {}).get("aws_session_token"),
    )  # all None: the default credential chain
    retry = Config(retries={"max_attempts": cfg.max_attempts, "mode": "standard"})
    return session.client(service, region_name=region, endpoint_url=cfg.endpoint_url, config=retry)


def account_credentials(cfg: InventoryConfig, account_id: str) -> dict[str, str]:
    """Temporary credentials for ``account_id`` through AssumeRole (boto3.Session kwargs)."""
    sts = _client(None, "sts", cfg.regions[0], cfg)
    role = cfg.role_arn_template.format(account_id=account_id)
    creds = sts.assume_role(RoleArn=role, RoleSessionName=cfg.session_name)["Credentials"]
    return {
        "aws_access_key_id": creds["AccessKeyId"],
        "aws_secret_access_key": creds["SecretAccessKey"],
        "aws_session_token": creds["SessionToken"],
    }


def _pages(cfg: InventoryConfig) -> dict[str, int]:
    return {"PageSize": cfg.page_size}


def _instance_tags(
    ec2: Any, instance_ids: list[str], pages: Mapping[str, int]
) -> dict[str, dict[str, str]]:
    # a filter (not InstanceIds) so an instance terminated mid-sweep is no error
    out: dict[str, dict[str, str]] = {}
    pager = ec2.get_paginator("describe_instances")
    for i in range(0, len(instance_ids), _FILTER_CHUNK):
        chunk = instance_ids[i : i + _FILTER_CHUNK]
        filters = [{"Name": "instance-id", "Values": chunk}]
        for page in pager.paginate(Filters=filters, PaginationConfig=pages):
            for reservation in page["Reservations"]:
                for inst in reservation["Instances"]:
                    out[inst["InstanceId"]] = tags_of(inst.get("Tags"))
    return out


def _vpc_labels(ec2: Any, region: str, pages: Mapping[str, int]) -> list[LabelRow]:
    rows: list[LabelRow] = []
    for page in ec2.get_paginator("describe_vpcs").paginate(PaginationConfig=pages):
        for vpc in page["Vpcs"]:
            cidrs = [a["CidrBlock"] for a in vpc.get("CidrBlockAssociationSet", [])]
            cidrs += [a["Ipv6CidrBlock"] for a in vpc.get("Ipv6CidrBlockAssociationSet", [])]
            rows += [label_row(c, "vpc", None, region, vpc["VpcId"]) for c in cidrs]
    for page in ec2.get_paginator("describe_subnets").paginate(PaginationConfig=pages):
        for sub in page["Subnets"]:
            cidrs = [sub["CidrBlock"]] if sub.get("CidrBlock") else []
            cidrs += [a["Ipv6CidrBlock"] for a in sub.get("Ipv6CidrBlockAssociationSet", [])]
            rows += [label_row(c, "subnet", None, region, sub["SubnetId"]) for c in cidrs]
    return rows


def sweep_scope(
    creds: Mapping[str, str] | None, account_id: str, region: str, cfg: InventoryConfig
) -> _ScopeOut:
    """Rows, labels and ENI count of one (account, region); raises on any AWS error."""
    ec2 = _client(creds, "ec2", region, cfg)
    pager = ec2.get_paginator("describe_network_interfaces")
    enis = [
        eni
        for page in pager.paginate(PaginationConfig=_pages(cfg))
        for eni in page["NetworkInterfaces"]
    ]
    ids = sorted(
        {str(a["InstanceId"]) for e in enis if (a := e.get("Attachment") or {}).get("InstanceId")}
    )
    tags = _instance_tags(ec2, ids, _pages(cfg)) if ids else {}
    rows = [
        row
        for eni in enis
        for row in eni_rows(eni, account_id, region, tags, cfg.app_tags, cfg.cluster_tags)
    ]
    labels = _vpc_labels(ec2, region, _pages(cfg)) if cfg.include_vpc_cidrs else []
    return rows, labels, len(enis)


def _accounts(cfg: InventoryConfig) -> Iterable[tuple[str, dict[str, str] | None, str | None]]:
    """(account_id, credentials, error) per account; credentials None = default chain."""
    if not cfg.accounts:
        try:
            sts = _client(None, "sts", cfg.regions[0], cfg)
            own: tuple[str, str | None] = (sts.get_caller_identity()["Account"], None)
        except Exception as err:  # no usable default credentials: every region fails
            own = (UNKNOWN_ACCOUNT, f"caller identity failed: {err}")
        yield own[0], None, own[1]
        return
    for account in cfg.accounts:
        try:
            yield account, account_credentials(cfg, account), None
        except Exception as err:
            yield account, None, f"assume-role failed: {err}"


def sweep(cfg: InventoryConfig) -> InventoryResult:
    """Sweep every configured (account, region); never raises for one scope's failure."""
    observed_at = datetime.now(UTC)
    result = InventoryResult(observed_at)
    jobs: list[tuple[str, str, Future[_ScopeOut] | None, str | None]] = []
    with ThreadPoolExecutor(max_workers=max(1, cfg.max_workers)) as pool:
        for account, creds, error in _accounts(cfg):
            for region in cfg.regions:
                if error is not None:
                    jobs.append((account, region, None, error))
                else:
                    future = pool.submit(sweep_scope, creds, account, region, cfg)
                    jobs.append((account, region, future, None))
        scopes = []
        for account, region, pending, error in jobs:
            try:
                if pending is None:
                    raise RuntimeError(error)
                rows, labels, count = pending.result()
            except Exception as err:
                log.warning("inventory scope %s/%s failed: %s", account, region, err)
                scopes.append(ScopeResult(account, region, error=str(err)))
                continue
            result.rows.extend(rows)
            result.labels.extend(labels)
            scopes.append(ScopeResult(account, region, interfaces=count))
    return InventoryResult(observed_at, result.rows, tuple(scopes), result.labels)


def inventory_observation(spark: SparkSession, result: InventoryResult) -> Observation:
    """The sweep as an :class:`Observation` (only successful scopes are covered)."""
    pdf = pd.DataFrame.from_records(result.rows, columns=list(ROW_COLUMNS)).astype("object")
    schema = ", ".join(f"{c} string" for c in ROW_COLUMNS)
    rows_df = spark.createDataFrame(pdf.where(pdf.notna(), None), schema)
    covered = tuple(sorted((s.account_id, s.region) for s in result.scopes if s.error is None))
    failed = tuple(((s.account_id, s.region), s.error or "") for s in result.failed)
    return Observation(result.observed_at, rows_df, covered, failed, label="aws:ec2")
