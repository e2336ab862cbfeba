"""A small, known set of VPC flow-log lines and inventory snapshots for the Druid demo.

Times are relative to ``base`` (the demo passes the current minute less an hour, so Druid's
late-message cut-off keeps every flow). Five apps in three regions (one IPv6), an S3 prefix
and the internet; flows over twelve minutes, some of them logged at both ENIs (the
destination's copy must not be counted twice), a REJECT and a NODATA line. Addresses are
documentation ranges (192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24, 2001:db8::/32).
"""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

ACCOUNT = "111122223333"
MINUTES = 12
# Ownership observations (minutes after base): the last one makes every flow's owner final.
SNAPSHOT_MINUTES = (0, 55)


@dataclass(frozen=True)
class App:
    """One app's single address and where it runs."""

    name: str
    ip: str
    region: str
    az: str

    @property
    def eni(self) -> str:
        return f"eni-{self.name}1"


APPS = {
    a.name: a
    for a in (
        App("api", "192.0.2.10", "us-east-1", "us-east-1a"),
        App("web", "192.0.2.11", "us-east-1", "us-east-1b"),
        App("db", "192.0.2.20", "eu-west-1", "eu-west-1a"),
        App("batch", "203.0.113.40", "eu-west-1", "eu-west-1b"),
        App("ml", "2001:db8::50", "ap-southeast-2", "ap-southeast-2a"),
    )
}
S3_IP = "198.51.100.9"  # labelled AWS:S3 (us-east-1)
INTERNET_IP = "203.0.113.200"  # no owner, no prefix label but 0.0.0.0/0
# (src app, dst app or address, bytes scale, logged at both ENIs, action)
PAIRS = (
    ("api", "db", 1000, True, "ACCEPT"),
    ("web", "db", 2000, False, "ACCEPT"),
    ("api", "web", 3000, True, "ACCEPT"),
    ("db", "batch", 4000, True, "ACCEPT"),
    ("web", S3_IP, 5000, False, "ACCEPT"),
    ("api", INTERNET_IP, 6000, False, "REJECT"),
    ("ml", "api", 7000, True, "ACCEPT"),
    ("batch", "ml", 8000, False, "ACCEPT"),
)


def _epoch(t: datetime) -> int:
    return int(t.timestamp())


def _line(eni: str, src: str, dst: str, start: int, nbytes: int, action: str, port: int) -> str:
    packets = 1 + nbytes // 500
    return (
        f"2 {ACCOUNT} {eni} {src} {dst} {port} 443 6 {packets} {nbytes} "
        f"{start} {start + 60} {action} OK"
    )


def flow_lines(base: datetime) -> dict[str, list[str]]:
    """Flow-log lines grouped by the ENI that logged them (one CloudWatch log stream each)."""
    by_eni: dict[str, list[str]] = {}
    for minute in range(1, MINUTES + 1):
        for i, (src, dst, scale, both_views, action) in enumerate(PAIRS):
            if (minute + i) % 3 == 0:
                continue  # not every pair talks every minute
            src_app, dst_app = APPS[src], APPS.get(dst)
            dst_ip = dst_app.ip if dst_app else dst
            start = _epoch(base + timedelta(minutes=minute, seconds=7 * i))
            nbytes = scale + 37 * minute
            port = 40000 + 100 * i + minute
            args = (src_app.ip, dst_ip, start, nbytes, action, port)
            by_eni.setdefault(src_app.eni, []).append(_line(src_app.eni, *args))
            if both_views and dst_app is not None and minute % 2 == 0:
                by_eni.setdefault(dst_app.eni, []).append(_line(dst_app.eni, *args))
    nodata_start = _epoch(base + timedelta(minutes=3))
    by_eni[APPS["db"].eni].append(
        f"2 {ACCOUNT} {APPS['db'].eni} - - - - - - - {nodata_start} {nodata_start + 60} - NODATA"
    )
    return by_eni


def envelope(eni: str, lines: list[str], base: datetime) -> bytes:
    """One gzip CloudWatch Logs subscription envelope, as Kinesis receives it."""
    body = {
        "messageType": "DATA_MESSAGE",
        "owner": ACCOUNT,
        "logGroup": "vpc-flow-logs",
        "logStream": f"{eni}-all",
        "subscriptionFilters": ["dredge"],
        "logEvents": [
            {"id": str(i), "timestamp": _epoch(base) * 1000, "message": m}
            for i, m in enumerate(lines)
        ],
    }
    return gzip.compress(json.dumps(body).encode())


def kinesis_records(base: datetime) -> list[dict[str, object]]:
    """PutRecords entries: one envelope per ENI."""
    return [
        {"Data": envelope(eni, lines, base), "PartitionKey": eni}
        for eni, lines in sorted(flow_lines(base).items())
    ]


def write_snapshots(folder: Path, base: datetime) -> list[str]:
    """One JSONL inventory snapshot per observation time; returns their paths in order."""
    folder.mkdir(parents=True, exist_ok=True)
    regions = sorted({a.region for a in APPS.values()})
    paths = []
    for minute in SNAPSHOT_MINUTES:
        observed = (base + timedelta(minutes=minute)).strftime("%Y-%m-%dT%H:%M:%SZ")
        common: dict[str, object] = {"observed_at": observed, "account_id": ACCOUNT}
        rows = [
            {
                **common,
                "region": a.region,
                "ip": a.ip,
                "app": a.name,
                "cluster": f"{a.name}-prod",
                "az": a.az,
                "vpc_id": "vpc-1",
                "subnet_id": f"subnet-{a.az}",
                "resource_id": a.eni,
                "kind": "instance",
                "eni_id": a.eni,
            }
            for a in APPS.values()
        ]
        rows += [{**common, "region": r, "scope_only": True} for r in regions]
        path = folder / f"snapshot-{minute:02d}.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
        paths.append(str(path))
    return paths
