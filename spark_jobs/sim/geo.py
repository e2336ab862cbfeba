"""Static geography of the simulated estate: regions, accounts, VPCs, subnets and AWS ranges.

Everything uses documentation or private address space: VPCs are ``10.<region_idx>.0.0/16``
and ``2001:db8:<region_idx + 1>::/48``, AWS service prefixes live in 192.0.2.0/24 and
``2001:db8:a<region_idx>::/48``, internet peers in 198.51.100.0/24 and 203.0.113.0/24.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np

REGIONS: tuple[str, ...] = ("us-east-1", "us-west-2", "eu-west-1")
AZ_ID_PREFIXES: tuple[str, ...] = ("use1", "usw2", "euw1")
AZ_LETTERS: tuple[str, ...] = ("a", "b", "c")
ACCOUNTS: tuple[str, ...] = ("111122223333", "444455556666", "777788889999")
# service -> /28 slot inside the region's AMAZON /26 (AMAZON overlaps its services, as in AWS)
AWS_SERVICES: tuple[str, ...] = ("S3", "DYNAMODB", "EC2")
INTERNET_NETS: tuple[str, ...] = ("198.51.100.0/24", "203.0.113.0/24")
N_REGIONS = len(REGIONS)
N_AZS = len(AZ_LETTERS)


def hex_id(rng: np.random.Generator, prefix: str, digits: int = 17) -> str:
    """An AWS-looking resource id such as ``eni-0a1b...`` drawn from ``rng``."""
    return f"{prefix}-{rng.bytes((digits + 1) // 2).hex()[:digits]}"


@dataclass(frozen=True)
class Vpc:
    """One VPC per region, each in its own account."""

    vpc_id: str
    cidr: str
    ipv6_cidr: str
    region: str
    account_id: str


@dataclass(frozen=True)
class Subnet:
    """A private (apps) or public (load balancers, NAT gateways) subnet in one AZ."""

    subnet_id: str
    cidr: str
    ipv6_cidr: str
    vpc_id: str
    region_idx: int
    az_idx: int
    account_id: str
    is_public: bool

    @property
    def region(self) -> str:
        return REGIONS[self.region_idx]

    @property
    def az(self) -> str:
        return REGIONS[self.region_idx] + AZ_LETTERS[self.az_idx]

    @property
    def az_id(self) -> str:
        return f"{AZ_ID_PREFIXES[self.region_idx]}-az{self.az_idx + 1}"


@dataclass(frozen=True)
class Geography:
    """The VPCs and subnets; ``subnet(r, a, public)`` finds one."""

    vpcs: tuple[Vpc, ...]
    subnets: tuple[Subnet, ...]

    def subnet_index(self, region_idx: int, az_idx: int, is_public: bool) -> int:
        return (region_idx * N_AZS + az_idx) * 2 + int(is_public)


def build_geography(rng: np.random.Generator) -> Geography:
    """Three VPCs with a private and a public subnet in each of their three AZs."""
    vpcs: list[Vpc] = []
    subnets: list[Subnet] = []
    for r, region in enumerate(REGIONS):
        vpc = Vpc(
            hex_id(rng, "vpc"), f"10.{r}.0.0/16", f"2001:db8:{r + 1}::/48", region, ACCOUNTS[r]
        )
        vpcs.append(vpc)
        for a in range(N_AZS):
            for is_public in (False, True):
                cidr = f"10.{r}.{192 + 4 * a}.0/22" if is_public else f"10.{r}.{32 * a}.0/20"
                v6 = f"2001:db8:{r + 1}:{(16 if is_public else 0) + a:x}::/64"
                sid = hex_id(rng, "subnet")
                subnets.append(Subnet(sid, cidr, v6, vpc.vpc_id, r, a, vpc.account_id, is_public))
    return Geography(tuple(vpcs), tuple(subnets))


def aws_prefixes() -> list[tuple[str, str, str]]:
    """(ip_prefix, region, service) rows, AMAZON supersets first."""
    rows: list[tuple[str, str, str]] = []
    for r, region in enumerate(REGIONS):
        rows.append((f"192.0.2.{64 * r}/26", region, "AMAZON"))
        for s, service in enumerate(AWS_SERVICES):
            rows.append((f"192.0.2.{64 * r + 16 * s}/28", region, service))
    return rows


def aws_ipv6_prefixes() -> list[tuple[str, str, str]]:
    """(ipv6_prefix, region, service) rows."""
    rows: list[tuple[str, str, str]] = []
    for r, region in enumerate(REGIONS):
        rows.append((f"2001:db8:a{r}::/48", region, "AMAZON"))
        for s, service in enumerate(AWS_SERVICES):
            rows.append((f"2001:db8:a{r}:{s + 1:x}::/64", region, service))
    return rows


def ip_ranges_doc(created: datetime) -> dict[str, Any]:
    """A small ip-ranges.json in the AWS format."""
    return {
        "syncToken": str(int(created.timestamp())),
        "createDate": created.strftime("%Y-%m-%d-%H-%M-%S"),
        "prefixes": [
            {"ip_prefix": p, "region": r, "service": s, "network_border_group": r}
            for p, r, s in aws_prefixes()
        ],
        "ipv6_prefixes": [
            {"ipv6_prefix": p, "region": r, "service": s, "network_border_group": r}
            for p, r, s in aws_ipv6_prefixes()
        ],
    }


def vpcs_doc(geo: Geography) -> dict[str, Any]:
    """The VPC/subnet CIDR document (IPv4 and IPv6 CIDRs as separate rows)."""
    vpcs = []
    for v in geo.vpcs:
        for cidr in (v.cidr, v.ipv6_cidr):
            vpcs.append(
                {"vpc_id": v.vpc_id, "cidr": cidr, "region": v.region, "account_id": v.account_id}
            )
    subnets = []
    for s in geo.subnets:
        for cidr in (s.cidr, s.ipv6_cidr):
            subnets.append(
                {
                    "subnet_id": s.subnet_id,
                    "cidr": cidr,
                    "vpc_id": s.vpc_id,
                    "az": s.az,
                    "region": s.region,
                    "account_id": s.account_id,
                }
            )
    return {"vpcs": vpcs, "subnets": subnets}


def aws_endpoint_ips(per_service: int = 4) -> list[tuple[str, str, str]]:
    """(ip, region, service) of the service endpoints flows go to (not AMAZON-only)."""
    out: list[tuple[str, str, str]] = []
    for prefix, region, service in aws_prefixes():
        if service == "AMAZON":
            continue
        net = ipaddress.ip_network(prefix)
        for k in range(per_service):
            out.append((str(net.network_address + 1 + 3 * k), region, service))
    return out


def internet_peer_ips(rng: np.random.Generator, count: int = 96) -> list[str]:
    """Distinct host addresses from the two documentation /24s."""
    hosts = [str(h) for net in INTERNET_NETS for h in ipaddress.ip_network(net).hosts()]
    picks = rng.choice(len(hosts), size=min(count, len(hosts)), replace=False)
    return [hosts[int(i)] for i in picks]
