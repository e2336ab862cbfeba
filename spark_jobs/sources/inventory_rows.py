"""EC2 network interfaces -> ownership observation rows (pure Python, no AWS calls).

Every address an ENI carries becomes one row with the ENI's owner: the primary and secondary
private IPv4 addresses, the IPv6 addresses, the public IPv4 addresses associated with any of
them (Elastic IPs or auto-assigned), and every address of the IPv4 prefixes delegated to it
(``Ipv4Prefixes``: /28s that EKS's VPC CNI hands to pods in prefix mode, as it hands out
secondary addresses otherwise - the same owner either way). Delegated IPv6 prefixes (/80,
2^48 addresses) are not expanded: their addresses fall back to the CIDR labels. The owner's
``kind`` and ``resource_id`` come from the interface type, description and requester;
``app`` / ``cluster`` from configurable tags, else from an Auto Scaling group, load balancer
or ECS service name in Netflix's ``app-stack-detail-vNNN`` convention (``api-prod-v042`` ->
app ``api``, cluster ``api-prod``).

``eni_attached_at`` (the ENI's ``Attachment.AttachTime``) is given only on the ENI's primary
private IPv4 and primary IPv6 address, and only when the ENI cannot be moved to another owner:
an instance's primary ENI (device index 0) or an ENI AWS manages for a service
(``RequesterManaged``: ECS tasks, load balancers, NAT gateways). Those addresses were the
owner's from that moment on; secondary addresses, Elastic IPs and delegated prefixes can move
without the ENI, so they get none (:mod:`spark_jobs.transforms.enrich`).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

ASG_TAG = "aws:autoscaling:groupName"
# EC2 delegates IPv4 prefixes as /28; anything wider is not an EC2 delegation: not expanded
MIN_PREFIX_LEN = 28
ECS_SERVICE_TAGS = ("aws:ecs:serviceName", "ecs:serviceName")
# '-v' + digits at the end: the push (version) of a Netflix cluster name
_PUSH_RE = re.compile(r"-v\d{3,}$")
_ELB_RE = re.compile(r"^ELB (?:(?:app|net|gwy)/)?([^/\s]+)")
_NAT_RE = re.compile(r"^Interface for NAT Gateway (nat-[0-9a-f]+)")
_ECS_RE = re.compile(r"^arn:aws[\w-]*:ecs:")
_TYPE_KIND = {
    "nat_gateway": "nat_gateway",
    "network_load_balancer": "load_balancer",
    "gateway_load_balancer": "load_balancer",
    "gateway_load_balancer_endpoint": "aws_service",
    "vpc_endpoint": "aws_service",
    "lambda": "lambda",
    "transit_gateway": "aws_service",
    "api_gateway_managed": "aws_service",
}


def frigga(name: str | None) -> tuple[str | None, str | None]:
    """Netflix name -> (app, cluster): ``api-prod-v042`` -> (``api``, ``api-prod``)."""
    if not name:
        return None, None
    cluster = _PUSH_RE.sub("", name)
    return cluster.split("-", 1)[0] or None, cluster


def _tag(tags: Mapping[str, str], keys: Sequence[str]) -> str | None:
    return next((tags[k] for k in keys if tags.get(k)), None)


def tags_of(items: Sequence[Mapping[str, Any]] | None) -> dict[str, str]:
    """EC2 ``[{'Key':..,'Value':..}]`` -> dict."""
    return {t["Key"]: t.get("Value", "") for t in items or ()}


def classify(eni: Mapping[str, Any]) -> tuple[str, str, str | None]:
    """(kind, resource_id, name to parse for app/cluster) of one ENI."""
    desc = eni.get("Description") or ""
    itype = eni.get("InterfaceType") or "interface"
    eni_id = eni["NetworkInterfaceId"]
    if (m := _NAT_RE.match(desc)) or itype == "nat_gateway":
        return "nat_gateway", m.group(1) if m else eni_id, None
    if (m := _ELB_RE.match(desc)) or itype in ("network_load_balancer", "gateway_load_balancer"):
        name = m.group(1) if m else None
        return "load_balancer", name or eni_id, name
    if _ECS_RE.match(desc):
        return "container", desc.rsplit("/", 1)[-1] or eni_id, None
    instance = (eni.get("Attachment") or {}).get("InstanceId")
    if instance:
        return "instance", instance, None
    return _TYPE_KIND.get(itype, "interface"), eni_id, None


def owner_of(
    eni: Mapping[str, Any],
    instance_tags: Mapping[str, Mapping[str, str]],
    app_tags: Sequence[str],
    cluster_tags: Sequence[str],
) -> dict[str, str | None]:
    """The owner columns of one ENI (``account_id``/``region`` are added by the caller)."""
    kind, resource_id, lb_name = classify(eni)
    tags = dict(instance_tags.get(resource_id, {})) if kind == "instance" else {}
    tags.update(tags_of(eni.get("TagSet")))
    named_app, named_cluster = frigga(tags.get(ASG_TAG) or lb_name or _tag(tags, ECS_SERVICE_TAGS))
    app = _tag(tags, app_tags) or named_app
    return {
        "app": app,
        "cluster": _tag(tags, cluster_tags) or named_cluster or app,
        "az": eni.get("AvailabilityZone"),
        "vpc_id": eni.get("VpcId"),
        "subnet_id": eni.get("SubnetId"),
        "resource_id": resource_id,
        "kind": kind,
        "eni_id": eni.get("NetworkInterfaceId"),
    }


def addresses_of(eni: Mapping[str, Any]) -> Iterator[str]:
    """Every address of an ENI: private (primary first), their public ones, IPv6, then the
    addresses of its delegated IPv4 prefixes."""
    seen: set[str] = set()
    public = (eni.get("Association") or {}).get("PublicIp")
    candidates = [eni.get("PrivateIpAddress"), public]
    for item in eni.get("PrivateIpAddresses") or ():
        candidates += [
            item.get("PrivateIpAddress"),
            (item.get("Association") or {}).get("PublicIp"),
        ]
    candidates += [a.get("Ipv6Address") for a in eni.get("Ipv6Addresses") or ()]
    for item in eni.get("Ipv4Prefixes") or ():
        candidates += _prefix_addresses(item.get("Ipv4Prefix"))
    for addr in candidates:
        if addr and addr not in seen:
            seen.add(addr)
            yield addr


def _prefix_addresses(prefix: str | None) -> list[str]:
    """All addresses of a delegated IPv4 prefix (pods may hold any of them); none for a
    malformed one, one with host bits set (never widened to its network: that would claim
    addresses the ENI may not hold) or one wider than ``/MIN_PREFIX_LEN``."""
    try:
        net = ipaddress.IPv4Network(prefix or "", strict=True)
    except ValueError:
        return []
    if net.prefixlen < MIN_PREFIX_LEN:
        return []
    return [str(a) for a in net]


def eni_rows(
    eni: Mapping[str, Any],
    account_id: str,
    region: str,
    instance_tags: Mapping[str, Mapping[str, str]],
    app_tags: Sequence[str] = ("app",),
    cluster_tags: Sequence[str] = ("cluster",),
) -> list[dict[str, str | None]]:
    """Observation rows (``ip``, owner columns, ``source``) for one ENI."""
    owner = owner_of(eni, instance_tags, app_tags, cluster_tags)
    base = {"account_id": account_id, "region": region, **owner, "source": "aws:ec2"}
    attached = attached_at(eni)
    primary = primary_addresses(eni) if attached else set()
    return [
        {"ip": ip, **base, "eni_attached_at": attached if ip in primary else None}
        for ip in addresses_of(eni)
    ]


def attached_at(eni: Mapping[str, Any]) -> str | None:
    """The ENI's attach time (ISO 8601, UTC) when its attachment cannot change, else None."""
    attachment = eni.get("Attachment") or {}
    fixed = attachment.get("DeviceIndex") == 0 or bool(eni.get("RequesterManaged"))
    when = attachment.get("AttachTime")
    if not fixed or when is None:
        return None
    if isinstance(when, str):
        when = datetime.fromisoformat(when.replace("Z", "+00:00"))
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return str(when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"))


def primary_addresses(eni: Mapping[str, Any]) -> set[str]:
    """The ENI's primary private IPv4 and primary IPv6 address (those it keeps for life)."""
    out = {eni.get("PrivateIpAddress")}
    out |= {a.get("Ipv6Address") for a in eni.get("Ipv6Addresses") or () if a.get("IsPrimaryIpv6")}
    return {a for a in out if a}
