"""The boto3 inventory path against a real moto server process: two accounts, three regions."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from pyspark.sql import SparkSession

from spark_jobs.jobs import refresh_ownership
from spark_jobs.sources.inventory import InventoryConfig, sweep
from spark_jobs.sources.ownership import read_cidr_labels, read_freshness, read_ownership

pytestmark = pytest.mark.integration

A, B = "111111111111", "222222222222"
BROKEN = "zz-nowhere-1"  # moto answers 500 for an unknown region: an unreachable scope
ROLE = "arn:aws:iam::{account_id}:role/dredge-inventory-reader"
MOTO = Path(sys.executable).parent / "moto_server"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}
    saved = {k: os.environ.get(k) for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
    os.environ.update(AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test")
    port = _free_port()
    proc = subprocess.Popen(
        [str(MOTO), "-H", "127.0.0.1", "-p", str(port)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(f"{url}/moto-api/", timeout=1).close()
            break
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                pytest.fail("moto_server did not become ready within 30 s")
            time.sleep(0.1)  # polling interval of a bounded readiness wait
    yield url
    proc.terminate()
    proc.wait(timeout=10)
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def _ec2(url: str, account: str, region: str) -> Any:
    sts = boto3.client("sts", endpoint_url=url, region_name="us-east-1")
    role = ROLE.format(account_id=account)
    c = sts.assume_role(RoleArn=role, RoleSessionName="seed")["Credentials"]
    return boto3.client(
        "ec2", endpoint_url=url, region_name=region, aws_access_key_id=c["AccessKeyId"],
        aws_secret_access_key=c["SecretAccessKey"], aws_session_token=c["SessionToken"],
    )  # fmt: skip


def _subnet(ec2: Any, vpc_cidr: str, cidr: str, az: str) -> tuple[str, str]:
    vpc = ec2.create_vpc(CidrBlock=vpc_cidr)["Vpc"]["VpcId"]
    sub = ec2.create_subnet(VpcId=vpc, CidrBlock=cidr, AvailabilityZone=az)["Subnet"]["SubnetId"]
    return vpc, sub


def _eni(ec2: Any, subnet: str, ip: str, desc: str = "", **kw: Any) -> str:
    eni = ec2.create_network_interface(SubnetId=subnet, PrivateIpAddress=ip, Description=desc, **kw)
    return str(eni["NetworkInterface"]["NetworkInterfaceId"])


@pytest.fixture(scope="module")
def estate(moto_url: str) -> dict[str, str]:
    """Seed: A/us-east-1 instance (ASG, secondary IP, IPv6), ALB and NAT (with public IP);
    B/eu-west-1 ECS task ENI with tags; B/us-east-1 empty; A/eu-west-1 empty."""
    ec2 = _ec2(moto_url, A, "us-east-1")
    vpc, sub = _subnet(ec2, "10.1.0.0/16", "10.1.1.0/24", "us-east-1a")
    inst = ec2.run_instances(
        ImageId="ami-12c6146b", MinCount=1, MaxCount=1, SubnetId=sub, PrivateIpAddress="10.1.1.20",
        TagSpecifications=[{"ResourceType": "instance",
                            "Tags": [{"Key": "aws:autoscaling:groupName", "Value": "api-prod-v042"}]}],
    )["Instances"][0]  # fmt: skip
    inst_eni = inst["NetworkInterfaces"][0]["NetworkInterfaceId"]
    ec2.assign_private_ip_addresses(NetworkInterfaceId=inst_eni, PrivateIpAddresses=["10.1.1.21"])
    ec2.assign_ipv6_addresses(NetworkInterfaceId=inst_eni, Ipv6Addresses=["2001:db8:1::20"])
    _eni(ec2, sub, "10.1.1.30", "ELB app/web-prod-frontend/50dc6c495c0c9188",
         Ipv6Addresses=[{"Ipv6Address": "2001:db8:1::30"}])  # fmt: skip
    nat_eni = _eni(ec2, sub, "10.1.1.40", "Interface for NAT Gateway nat-0abc123")
    alloc = ec2.allocate_address(Domain="vpc")
    ec2.associate_address(AllocationId=alloc["AllocationId"], NetworkInterfaceId=nat_eni)
    ec2b = _ec2(moto_url, B, "eu-west-1")
    vpc_b, sub_b = _subnet(ec2b, "10.2.0.0/16", "10.2.1.0/24", "eu-west-1b")
    _eni(ec2b, sub_b, "10.2.1.50", f"arn:aws:ecs:eu-west-1:{B}:attachment/6c1e-task",
         TagSpecifications=[{"ResourceType": "network-interface", "Tags": [
             {"Key": "app", "Value": "billing"}, {"Key": "cluster", "Value": "billing-worker"}]}])  # fmt: skip
    return {"instance": inst["InstanceId"], "public": alloc["PublicIp"], "vpc": vpc,
            "subnet": sub, "vpc_b": vpc_b, "subnet_b": sub_b}  # fmt: skip


def _cfg(url: str) -> InventoryConfig:
    return InventoryConfig(
        regions=("us-east-1", "eu-west-1", BROKEN), accounts=(A, B), role_arn_template=ROLE,
        endpoint_url=url, max_attempts=1,
    )  # fmt: skip


def test_sweep_covers_every_address_and_reports_failed_scopes(
    moto_url: str, estate: dict[str, str]
) -> None:
    result = sweep(_cfg(moto_url))
    got = sorted(
        (r["ip"], r["app"], r["cluster"], r["account_id"], r["region"], r["resource_id"], r["kind"])
        for r in result.rows
    )
    i, ue, ew = estate["instance"], "us-east-1", "eu-west-1"
    assert got == sorted([
        ("10.1.1.20", "api", "api-prod", A, ue, i, "instance"),
        ("10.1.1.21", "api", "api-prod", A, ue, i, "instance"),
        ("2001:db8:1::20", "api", "api-prod", A, ue, i, "instance"),
        ("10.1.1.30", "web", "web-prod-frontend", A, ue, "web-prod-frontend", "load_balancer"),
        ("2001:db8:1::30", "web", "web-prod-frontend", A, ue, "web-prod-frontend", "load_balancer"),
        ("10.1.1.40", None, None, A, ue, "nat-0abc123", "nat_gateway"),
        (estate["public"], None, None, A, ue, "nat-0abc123", "nat_gateway"),
        ("10.2.1.50", "billing", "billing-worker", B, ew, "6c1e-task", "container"),
    ])  # fmt: skip
    ok = sorted((s.account_id, s.region, s.interfaces) for s in result.scopes if s.error is None)
    assert ok == [(A, ew, 0), (A, ue, 3), (B, ew, 1), (B, ue, 0)]
    assert sorted((s.account_id, s.region) for s in result.failed) == [(A, BROKEN), (B, BROKEN)]
    labels = {(r[0], r[3], r[6]) for r in result.labels}
    assert ("10.1.0.0/16", "vpc", estate["vpc"]) in labels
    assert ("10.2.1.0/24", "subnet", estate["subnet_b"]) in labels


def test_job_applies_inventory_and_keeps_failed_scope_open(
    spark: SparkSession, tmp_path: Path, moto_url: str, estate: dict[str, str]
) -> None:
    root = tmp_path / "data"
    old = tmp_path / "before.jsonl"
    base = {"app": "old", "cluster": "old", "az": None, "vpc_id": None, "subnet_id": None,
            "resource_id": "i-old", "kind": "instance"}  # fmt: skip
    old.write_text(
        "".join(json.dumps({"observed_at": "2024-01-01T00:00:00Z", **r, **base}) + "\n" for r in [
            {"account_id": A, "region": BROKEN, "ip": "10.9.9.9"},  # scope unreachable now
            {"account_id": A, "region": "us-east-1", "ip": "10.1.1.99"},  # gone now
            {"account_id": A, "region": "us-east-1", "ip": "10.1.1.21"},  # now api's secondary
        ])
    )  # fmt: skip
    args = [
        "--conf",
        str(Path(__file__).parents[2] / "conf/local.yaml"),
        "--set",
        f"paths.root={root}",
    ]
    assert refresh_ownership.main([*args, "--snapshot", str(old)]) == 0
    code = refresh_ownership.main([
        *args, "--inventory", "aws", "--regions", f"us-east-1,eu-west-1,{BROKEN}",
        "--accounts", f"{A},{B}", "--role-arn-template", ROLE, "--endpoint-url", moto_url,
        "--max-attempts", "1",
    ])  # fmt: skip
    assert code == refresh_ownership.EXIT_PARTIAL
    table = read_ownership(spark, str(root / "ownership"))
    rows = {(r["ip"], r["app"], r["valid_to"] is None) for r in table.collect()}
    assert ("10.9.9.9", "old", True) in rows  # failed scope: left open
    assert ("10.1.1.99", "old", False) in rows  # covered scope, absent: closed
    assert ("10.1.1.21", "old", False) in rows and ("10.1.1.21", "api", True) in rows
    assert len([r for r in rows if r[2]]) == 9  # 8 live addresses + the failed scope's one
    # the instance's primary ENI cannot move: its primary address carries the attach time
    attached = {r["ip"]: r["eni_attached_at"] for r in table.where("valid_to IS NULL").collect()}
    assert attached["10.1.1.20"] is not None and attached["10.1.1.20"].year >= 2025
    assert attached["10.1.1.21"] is None and attached["2001:db8:1::30"] is None
    assert attached[estate["public"]] is None  # an Elastic IP moves without the ENI
    freshness = read_freshness(spark, str(root / "ownership"))
    assert freshness is not None and freshness.year >= 2025
    labels = read_cidr_labels(spark, str(root / "cidr_labels"))
    kinds = {(r["cidr"], r["kind"]) for r in labels.collect()}
    assert {("10.1.1.0/24", "subnet"), ("0.0.0.0/0", "internet"), ("::/0", "internet")} <= kinds
