"""The boto3 sweep without a server: EC2 pages followed, unreachable accounts become failed scopes."""

from __future__ import annotations

import socket
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from spark_jobs.sources import inventory
from spark_jobs.sources.inventory import UNKNOWN_ACCOUNT, InventoryConfig, sweep, sweep_scope

A = "111111111111"


def _eni(eni_id: str, ip: str, **kw: Any) -> dict[str, Any]:
    return {"NetworkInterfaceId": eni_id, "PrivateIpAddress": ip, "SubnetId": "subnet-1",
            "VpcId": "vpc-1", "AvailabilityZone": "us-east-1a", **kw}  # fmt: skip


def test_sweep_scope_follows_every_page(monkeypatch: pytest.MonkeyPatch) -> None:
    """DescribeNetworkInterfaces is asked for pages (MaxResults) and every NextToken is followed;
    moto answers in one page, so this is where pagination is checked."""
    ec2 = boto3.client("ec2", region_name="us-east-1", aws_access_key_id="test",
                       aws_secret_access_key="test")  # fmt: skip
    attached = {"Attachment": {"InstanceId": "i-1"}}
    with Stubber(ec2) as stub:
        stub.add_response(
            "describe_network_interfaces",
            {"NetworkInterfaces": [_eni("eni-1", "198.51.100.1", **attached)], "NextToken": "p2"},
            {"MaxResults": 5},
        )
        stub.add_response(
            "describe_network_interfaces",
            {"NetworkInterfaces": [_eni("eni-2", "198.51.100.2")]},
            {"MaxResults": 5, "NextToken": "p2"},
        )
        stub.add_response(
            "describe_instances",
            {"Reservations": [{"Instances": [
                {"InstanceId": "i-1", "Tags": [{"Key": "app", "Value": "api"}]}]}]},
            {"Filters": [{"Name": "instance-id", "Values": ["i-1"]}], "MaxResults": 5},
        )  # fmt: skip
        stub.add_response(
            "describe_vpcs",
            {"Vpcs": [{"VpcId": "vpc-1", "CidrBlockAssociationSet": [
                {"CidrBlock": "198.51.100.0/24"}]}], "NextToken": "v2"},
            {"MaxResults": 5},
        )  # fmt: skip
        stub.add_response("describe_vpcs", {"Vpcs": []}, {"MaxResults": 5, "NextToken": "v2"})
        stub.add_response(
            "describe_subnets",
            {"Subnets": [{"SubnetId": "subnet-1", "CidrBlock": "198.51.100.0/25"}]},
            {"MaxResults": 5},
        )
        monkeypatch.setattr(inventory, "_client", lambda *_args: ec2)
        rows, labels, count = sweep_scope(None, A, "us-east-1", InventoryConfig(page_size=5))
        stub.assert_no_pending_responses()
    assert count == 2
    assert sorted((r["ip"], r["app"], r["resource_id"], r["kind"]) for r in rows) == [
        ("198.51.100.1", "api", "i-1", "instance"),
        ("198.51.100.2", None, "eni-2", "interface"),
    ]
    assert sorted((r[0], r[3], r[6]) for r in labels) == [
        ("198.51.100.0/24", "vpc", "vpc-1"),
        ("198.51.100.0/25", "subnet", "subnet-1"),
    ]


@pytest.fixture()
def dead_endpoint(monkeypatch: pytest.MonkeyPatch) -> str:
    """A local port nothing listens on: every call is refused at once."""
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(key, "test")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.mark.parametrize(
    ("accounts", "scope_account", "reason"),
    [((A,), A, "assume-role failed"), ((), UNKNOWN_ACCOUNT, "caller identity failed")],
)
def test_unreachable_account_fails_its_scopes_without_raising(
    dead_endpoint: str, accounts: tuple[str, ...], scope_account: str, reason: str
) -> None:
    cfg = InventoryConfig(regions=("us-east-1", "eu-west-1"), accounts=accounts,
                          endpoint_url=dead_endpoint, max_attempts=1)  # fmt: skip
    result = sweep(cfg)
    assert result.rows == [] and result.labels == []
    assert sorted((s.account_id, s.region) for s in result.failed) == [
        (scope_account, "eu-west-1"),
        (scope_account, "us-east-1"),
    ]
    assert all((s.error or "").startswith(reason) for s in result.failed)
