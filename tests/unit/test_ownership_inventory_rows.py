"""ENI -> owner rows, Netflix names, ip-ranges labels, durations and the refresh loop (no Spark)."""

from __future__ import annotations

import os
import signal
import threading
from datetime import UTC, datetime

import pytest

from spark_jobs.jobs import refresh_ownership
from spark_jobs.jobs.refresh_ownership import parse_duration, run_loop
from spark_jobs.sources.inventory_rows import addresses_of, classify, eni_rows, frigga
from spark_jobs.sources.ownership import labels_from_ip_ranges, labels_from_vpc_doc


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("api-prod-v042", ("api", "api-prod")),
        ("api-prod-useast-v1000", ("api", "api-prod-useast")),
        ("api", ("api", "api")),
        ("api-v2-canary", ("api", "api-v2-canary")),  # '-v2' is not a push suffix (3+ digits)
        ("", (None, None)),
        (None, (None, None)),
    ],
)
def test_frigga(name: str | None, expected: tuple[str | None, str | None]) -> None:
    assert frigga(name) == expected


def _eni(**kw: object) -> dict:
    return {
        "NetworkInterfaceId": "eni-1",
        "AvailabilityZone": "us-east-1a",
        "VpcId": "vpc-1",
        "SubnetId": "subnet-1",
        **kw,
    }


@pytest.mark.parametrize(
    ("eni", "expected"),
    [
        (
            _eni(Description="ELB app/web-prod-frontend/50dc6c"),
            ("load_balancer", "web-prod-frontend", "web-prod-frontend"),
        ),
        (_eni(Description="ELB net/edge-prod/1a2b"), ("load_balancer", "edge-prod", "edge-prod")),
        (_eni(Description="ELB legacy-prod"), ("load_balancer", "legacy-prod", "legacy-prod")),
        (_eni(InterfaceType="network_load_balancer"), ("load_balancer", "eni-1", None)),
        (_eni(Description="Interface for NAT Gateway nat-0abc"), ("nat_gateway", "nat-0abc", None)),
        (_eni(InterfaceType="nat_gateway"), ("nat_gateway", "eni-1", None)),
        (_eni(Description="arn:aws:ecs:us-east-1:1:attachment/9f-1"), ("container", "9f-1", None)),
        (_eni(Attachment={"InstanceId": "i-7"}), ("instance", "i-7", None)),
        (_eni(InterfaceType="vpc_endpoint"), ("aws_service", "eni-1", None)),
        (_eni(InterfaceType="lambda"), ("lambda", "eni-1", None)),
        (_eni(), ("interface", "eni-1", None)),
    ],
)
def test_classify(eni: dict, expected: tuple) -> None:
    assert classify(eni) == expected


def test_eni_rows_all_addresses_and_tag_precedence() -> None:
    eni = _eni(
        Attachment={"InstanceId": "i-7"},
        PrivateIpAddress="10.0.0.5",
        Association={"PublicIp": "203.0.113.5"},
        PrivateIpAddresses=[
            {
                "PrivateIpAddress": "10.0.0.5",
                "Primary": True,
                "Association": {"PublicIp": "203.0.113.5"},
            },
            {
                "PrivateIpAddress": "10.0.0.6",
                "Primary": False,
                "Association": {"PublicIp": "203.0.113.6"},
            },
        ],
        Ipv6Addresses=[{"Ipv6Address": "2001:db8::5"}],
        TagSet=[{"Key": "team-app", "Value": "billing"}],
    )
    assert list(addresses_of(eni)) == [
        "10.0.0.5",
        "203.0.113.5",
        "10.0.0.6",
        "203.0.113.6",
        "2001:db8::5",
    ]
    tags = {"i-7": {"aws:autoscaling:groupName": "api-prod-v042"}}
    rows = eni_rows(
        eni, "111", "us-east-1", tags, app_tags=("team-app",), cluster_tags=("cluster",)
    )
    assert {(r["ip"], r["app"], r["cluster"], r["resource_id"], r["kind"]) for r in rows} == {
        (ip, "billing", "api-prod", "i-7", "instance")
        for ip in ("10.0.0.5", "203.0.113.5", "10.0.0.6", "203.0.113.6", "2001:db8::5")
    }
    assert rows[0]["account_id"] == "111" and rows[0]["az"] == "us-east-1a"
    assert rows[0]["source"] == "aws:ec2"


ATTACHED = datetime(2026, 3, 1, 12, 0, 5, tzinfo=UTC)


@pytest.mark.parametrize(
    ("attachment", "requester_managed", "expected"),
    [
        ({"DeviceIndex": 0, "AttachTime": ATTACHED}, False, "2026-03-01T12:00:05.000000Z"),
        # AWS attaches its own ENIs (ECS tasks, load balancers, NAT gateways): they never move
        ({"DeviceIndex": 1, "AttachTime": ATTACHED}, True, "2026-03-01T12:00:05.000000Z"),
        ({"DeviceIndex": 1, "AttachTime": ATTACHED}, False, None),  # a secondary ENI can move
        ({"DeviceIndex": 0}, False, None),  # no attach time given
        (None, True, None),  # not attached
    ],
)
def test_the_attach_time_is_given_on_primary_addresses_of_enis_that_cannot_move(
    attachment: dict | None, requester_managed: bool, expected: str | None
) -> None:
    eni = _eni(
        Attachment=attachment,
        RequesterManaged=requester_managed,
        PrivateIpAddress="10.0.0.5",
        Association={"PublicIp": "203.0.113.5"},
        PrivateIpAddresses=[
            {"PrivateIpAddress": "10.0.0.5", "Primary": True},
            {"PrivateIpAddress": "10.0.0.6", "Primary": False},
        ],
        Ipv6Addresses=[
            {"Ipv6Address": "2001:db8::5", "IsPrimaryIpv6": True},
            {"Ipv6Address": "2001:db8::6"},
        ],
        Ipv4Prefixes=[{"Ipv4Prefix": "10.0.1.16/28"}],
    )
    rows = {r["ip"]: r["eni_attached_at"] for r in eni_rows(eni, "111", "us-east-1", {})}
    primary = {"10.0.0.5", "2001:db8::5"}
    assert {ip for ip, at in rows.items() if at is not None} == (primary if expected else set())
    assert all(rows[ip] == expected for ip in primary)
    assert len(rows) == 2 + 1 + 2 + 16  # nothing else changes: every address has its row


def test_delegated_ipv4_prefixes_are_the_enis_addresses_ipv6_prefixes_are_not() -> None:
    eni = _eni(
        Attachment={"InstanceId": "i-8"},
        PrivateIpAddress="10.0.0.5",
        PrivateIpAddresses=[{"PrivateIpAddress": "10.0.0.5", "Primary": True}],
        Ipv4Prefixes=[
            {"Ipv4Prefix": "10.0.1.16/28"},  # EKS prefix mode: pods take these
            {"Ipv4Prefix": "10.9.0.0/16"},  # wider than any EC2 delegates: not expanded
            {"Ipv4Prefix": "10.0.2.17/28"},  # host bits set: never widened to 10.0.2.16/28
            {"Ipv4Prefix": "not-a-prefix"},
            {},
        ],
        Ipv6Prefixes=[{"Ipv6Prefix": "2001:db8:1:2:3::/80"}],
    )
    got = list(addresses_of(eni))
    assert got == ["10.0.0.5", *[f"10.0.1.{i}" for i in range(16, 32)]]
    rows = eni_rows(eni, "111", "us-east-1", {"i-8": {"app": "pods"}})
    assert {(r["ip"], r["app"], r["resource_id"]) for r in rows} == {
        (ip, "pods", "i-8") for ip in got
    }


def test_ip_ranges_one_label_per_prefix_most_specific_service() -> None:
    doc = {
        "prefixes": [
            {
                "ip_prefix": "3.5.140.0/22",
                "region": "ap-northeast-2",
                "service": "AMAZON",
                "network_border_group": "ap-northeast-2",
            },
            {
                "ip_prefix": "3.5.140.0/22",
                "region": "ap-northeast-2",
                "service": "S3",
                "network_border_group": "ap-northeast-2",
            },
            {
                "ip_prefix": "13.34.37.64/27",
                "region": "ap-southeast-4",
                "service": "AMAZON",
                "network_border_group": "ap-southeast-4",
            },
        ],
        "ipv6_prefixes": [
            {
                "ipv6_prefix": "2600:1f14::/35",
                "region": "us-west-2",
                "service": "EC2",
                "network_border_group": "us-west-2",
            },
            {
                "ipv6_prefix": "2600:1f14::/35",
                "region": "us-west-2",
                "service": "AMAZON",
                "network_border_group": "us-west-2",
            },
        ],
    }
    assert labels_from_ip_ranges(doc) == [
        (
            "13.34.37.64/27",
            123,
            "00000000000000000000ffff0d22254",
            "aws_service",
            "AMAZON",
            "ap-southeast-4",
            "aws:AMAZON:ap-southeast-4",
        ),
        ("2600:1f14::/35", 35, "26001f140", "aws_service", "EC2", "us-west-2", "aws:EC2:us-west-2"),
        (
            "3.5.140.0/22",
            118,
            "00000000000000000000ffff03058c",
            "aws_service",
            "S3",
            "ap-northeast-2",
            "aws:S3:ap-northeast-2",
        ),
    ]


def test_vpc_doc_labels() -> None:
    doc = {
        "vpcs": [{"vpc_id": "vpc-1", "region": "us-east-1", "cidrs": ["10.0.0.0/16"]}],
        "subnets": [{"subnet_id": "subnet-1", "region": "us-east-1", "cidr": "10.0.1.0/24"}],
    }
    assert labels_from_vpc_doc(doc) == [
        ("10.0.0.0/16", 112, "00000000000000000000ffff0a00", "vpc", None, "us-east-1", "vpc-1"),
        (
            "10.0.1.0/24",
            120,
            "00000000000000000000ffff0a0001",
            "subnet",
            None,
            "us-east-1",
            "subnet-1",
        ),
    ]


@pytest.mark.parametrize(
    ("text", "seconds"), [("90", 90.0), ("30s", 30.0), ("5m", 300.0), ("1h", 3600.0)]
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "0", "5d", "-1m", "m"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(Exception, match="bad duration"):
        parse_duration(text)


@pytest.mark.timeout(20)
def test_loop_stops_cleanly_on_sigterm() -> None:
    calls: list[int] = []

    def run() -> int:
        calls.append(1)
        os.kill(os.getpid(), signal.SIGTERM)  # arrives while this run is in flight
        return 0

    before = signal.getsignal(signal.SIGTERM)
    assert run_loop(run, every=3600, jitter=0.1, max_runs=0) == 0
    assert calls == [1]  # finished the run, did not wait an hour for the next
    assert signal.getsignal(signal.SIGTERM) is before


def test_loop_max_runs_and_exit_code() -> None:
    codes = iter([0, 1])
    assert run_loop(lambda: next(codes), every=0.01, jitter=0.5, max_runs=2) == 1


def test_loop_survives_a_failing_run(caplog: pytest.LogCaptureFixture) -> None:
    """A run that raises is logged with its traceback and counted; the loop goes on, and the
    exit code is the last run's (EXIT_ERROR when the last one raised)."""
    outcomes: list[int | Exception] = [
        RuntimeError("ConcurrentAppendException"),
        0,
        OSError("boto"),
    ]
    calls: list[int] = []

    def run() -> int:
        calls.append(1)
        outcome = outcomes[len(calls) - 1]
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    with caplog.at_level("INFO", logger="dredge.refresh_ownership"):
        assert run_loop(run, every=0.01, jitter=0.0, max_runs=2) == refresh_ownership.EXIT_OK
    assert len(calls) == 2  # the second run happened after the first raised
    failed = [r for r in caplog.records if r.exc_info]
    assert [str(r.exc_info[1]) for r in failed if r.exc_info] == ["ConcurrentAppendException"]
    assert "run 1 failed (1 of 1 runs so far)" in failed[0].getMessage()
    assert "after 2 runs, 1 failed; exit 0" in caplog.records[-1].getMessage()
    calls.clear()
    assert run_loop(run, every=0.01, jitter=0.0, max_runs=3) == refresh_ownership.EXIT_ERROR
    assert len(calls) == 3


def test_vpc_doc_with_one_row_per_cidr() -> None:
    """The simulator's (and a flat export's) layout: one VPC row per CIDR, IPv4 and IPv6."""
    doc = {
        "vpcs": [
            {"vpc_id": "vpc-1", "region": "us-east-1", "cidr": "10.0.0.0/16"},
            {"vpc_id": "vpc-1", "region": "us-east-1", "cidr": "2001:db8:1::/48"},
        ]
    }
    assert labels_from_vpc_doc(doc) == [
        ("10.0.0.0/16", 112, "00000000000000000000ffff0a00", "vpc", None, "us-east-1", "vpc-1"),
        ("2001:db8:1::/48", 48, "20010db80001", "vpc", None, "us-east-1", "vpc-1"),
    ]


def test_loop_waits_every_with_jitter(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each wait is ``every`` scaled by a uniform draw in [-jitter, +jitter]."""
    draws = iter([-0.2, 0.2])
    bounds: list[tuple[float, float]] = []
    waits: list[float] = []

    def uniform(low: float, high: float) -> float:
        bounds.append((low, high))
        return next(draws)

    class Event(threading.Event):
        def wait(self, timeout: float | None = None) -> bool:
            waits.append(timeout or 0.0)
            return False

    monkeypatch.setattr(refresh_ownership.random, "uniform", uniform)
    monkeypatch.setattr(refresh_ownership.threading, "Event", Event)
    assert run_loop(lambda: 0, every=300, jitter=0.2, max_runs=3) == 0
    assert bounds == [(-0.2, 0.2), (-0.2, 0.2)]
    assert waits == [pytest.approx(240.0), pytest.approx(360.0)]
