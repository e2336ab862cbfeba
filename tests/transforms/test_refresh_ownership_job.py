"""The refresh-ownership job wiring: snapshot directories, stale rejection exit code, labels
(each run replaces only the label sources it read)."""

from __future__ import annotations

import json
from pathlib import Path

from pyspark.sql import SparkSession

from spark_jobs import config
from spark_jobs.jobs import enrich_flows, refresh_ownership
from spark_jobs.sinks.ownership import write_cidr_labels
from spark_jobs.sources.inventory import InventoryConfig
from spark_jobs.sources.ownership import (
    cidr_labels_df,
    internet_labels,
    label_row,
    read_cidr_labels,
    read_freshness,
    read_ownership,
)

CONF = str(Path(__file__).parents[2] / "conf/local.yaml")


def _snap(path: Path, at: str, ips: list[str]) -> None:
    owner = {"account_id": "111111111111", "region": "us-east-1", "app": "api", "cluster": "api-prod",
             "az": "us-east-1a", "vpc_id": "vpc-1", "subnet_id": "subnet-1", "resource_id": "i-1",
             "kind": "instance"}  # fmt: skip
    path.write_text(
        "".join(json.dumps({"observed_at": at, "ip": ip, **owner}) + "\n" for ip in ips)
    )


def test_job_directory_stale_and_labels(spark: SparkSession, tmp_path: Path) -> None:
    snaps = tmp_path / "snaps"
    snaps.mkdir()
    _snap(snaps / "a.jsonl", "2024-05-01T00:00:00Z", ["192.0.2.1", "192.0.2.2"])
    _snap(snaps / "b.jsonl", "2024-05-01T00:05:00Z", ["192.0.2.2"])
    ip_ranges = tmp_path / "ip-ranges.json"
    ip_ranges.write_text(json.dumps({"prefixes": [
        {"ip_prefix": "52.95.0.0/16", "region": "us-east-1", "service": "S3",
         "network_border_group": "us-east-1"}], "ipv6_prefixes": []}))  # fmt: skip
    vpcs = tmp_path / "vpcs.json"
    vpcs.write_text(json.dumps({"vpcs": [{"vpc_id": "vpc-1", "region": "us-east-1",
                                          "cidrs": ["10.0.0.0/16"]}]}))  # fmt: skip
    root = tmp_path / "data"
    args = ["--conf", CONF, "--set", f"paths.root={root}"]
    code = refresh_ownership.main(
        [*args, "--snapshot", str(snaps), "--ip-ranges", str(ip_ranges), "--vpc-cidrs", str(vpcs)]
    )
    assert code == refresh_ownership.EXIT_OK
    table = read_ownership(spark, str(root / "ownership"))
    got = sorted(
        (r["ip"], str(r["valid_from"])[11:16], str(r["valid_to"])[11:16]) for r in table.collect()
    )
    assert got == [("192.0.2.1", "00:00", "00:05"), ("192.0.2.2", "00:00", "")]
    labels = sorted(
        (r["cidr"], r["prefix_len"], r["kind"], r["label"])
        for r in read_cidr_labels(spark, str(root / "cidr_labels")).collect()
    )
    assert labels == [
        ("0.0.0.0/0", 96, "internet", "internet"),
        ("10.0.0.0/16", 112, "vpc", "vpc-1"),
        ("52.95.0.0/16", 112, "aws_service", "aws:S3:us-east-1"),
        ("::/0", 0, "internet", "internet"),
    ]
    # the directory again: a.jsonl is older than the table (skipped), b.jsonl a no-op re-run
    assert refresh_ownership.main([*args, "--snapshot", str(snaps)]) == refresh_ownership.EXIT_OK
    assert read_ownership(spark, str(root / "ownership")).count() == 2
    # the old file named explicitly is rejected, and nothing changes
    stale = refresh_ownership.main([*args, "--snapshot", str(snaps / "a.jsonl")])
    assert stale == refresh_ownership.EXIT_REJECTED
    assert read_ownership(spark, str(root / "ownership")).count() == 2
    freshness = read_freshness(spark, str(root / "ownership"))
    assert freshness is not None and freshness.isoformat() == "2024-05-01T00:05:00+00:00"
    # a run that reads only VPC CIDRs replaces the VPC labels and keeps the ip-ranges ones
    vpcs.write_text(json.dumps({"vpcs": [{"vpc_id": "vpc-2", "region": "us-east-1",
                                          "cidrs": ["10.1.0.0/16"]}]}))  # fmt: skip
    assert refresh_ownership.main([*args, "--vpc-cidrs", str(vpcs)]) == refresh_ownership.EXIT_OK
    labels = sorted(
        (r["cidr"], r["kind"], r["label"])
        for r in read_cidr_labels(spark, str(root / "cidr_labels")).collect()
    )
    assert labels == [
        ("0.0.0.0/0", "internet", "internet"),
        ("10.1.0.0/16", "vpc", "vpc-2"),
        ("52.95.0.0/16", "aws_service", "aws:S3:us-east-1"),
        ("::/0", "internet", "internet"),
    ]


def test_sweep_labels_keep_failed_regions_and_ip_ranges(
    spark: SparkSession, tmp_path: Path
) -> None:
    """A sweep replaces VPC/subnet labels, except in a region where a scope failed."""
    path = str(tmp_path / "cidr_labels")
    before = [
        label_row("52.95.0.0/16", "aws_service", "S3", "us-east-1", "aws:S3:us-east-1"),
        label_row("10.1.0.0/16", "vpc", None, "us-east-1", "vpc-gone"),
        label_row("10.2.0.0/16", "vpc", None, "eu-west-1", "vpc-eu"),
        label_row("10.2.1.0/24", "subnet", None, "eu-west-1", "subnet-eu"),
        *internet_labels(),
    ]
    write_cidr_labels(cidr_labels_df(spark, before), path)
    opts = refresh_ownership.RefreshOptions(inventory=InventoryConfig())
    assert refresh_ownership.labels_to_keep(refresh_ownership.RefreshOptions(), set()) is None
    swept = [label_row("10.3.0.0/16", "vpc", None, "us-east-1", "vpc-new"), *internet_labels()]
    keep = refresh_ownership.labels_to_keep(opts, {"eu-west-1"})
    write_cidr_labels(cidr_labels_df(spark, swept), path, keep)
    got = sorted(
        (r["cidr"], r["kind"], r["label"]) for r in read_cidr_labels(spark, path).collect()
    )
    assert got == [
        ("0.0.0.0/0", "internet", "internet"),
        ("10.2.0.0/16", "vpc", "vpc-eu"),  # eu-west-1 failed: its VPC labels stay
        ("10.2.1.0/24", "subnet", "subnet-eu"),
        ("10.3.0.0/16", "vpc", "vpc-new"),  # us-east-1 swept: vpc-gone went
        ("52.95.0.0/16", "aws_service", "aws:S3:us-east-1"),  # not refreshed: kept
        ("::/0", "internet", "internet"),
    ]


def test_snapshot_only_run_creates_internet_labels(spark: SparkSession, tmp_path: Path) -> None:
    """The README path (``--snapshot`` alone, then ``dredge stream``) needs a label table; a
    later label-less run leaves the labels another run wrote alone."""
    snap = tmp_path / "a.jsonl"
    _snap(snap, "2024-05-01T00:00:00Z", ["192.0.2.1"])
    root = tmp_path / "data"
    args = ["--conf", CONF, "--set", f"paths.root={root}"]
    assert refresh_ownership.main([*args, "--snapshot", str(snap)]) == refresh_ownership.EXIT_OK
    labels_path = str(root / "cidr_labels")
    got = sorted(
        (r["cidr"], r["kind"], r["label"]) for r in read_cidr_labels(spark, labels_path).collect()
    )
    assert got == [("0.0.0.0/0", "internet", "internet"), ("::/0", "internet", "internet")]
    cfg = config.load(CONF, {"paths": {"root": str(root)}, "kafka": {"enabled": False}})
    enrich_flows._prepare(spark, cfg)  # raised SystemExit "no cidr_labels table" before
    ip_ranges = tmp_path / "ip-ranges.json"
    ip_ranges.write_text(json.dumps({"prefixes": [
        {"ip_prefix": "52.95.0.0/16", "region": "us-east-1", "service": "S3"}]}))  # fmt: skip
    assert refresh_ownership.main([*args, "--ip-ranges", str(ip_ranges)]) == 0
    _snap(snap, "2024-05-01T00:05:00Z", ["192.0.2.1"])
    assert refresh_ownership.main([*args, "--snapshot", str(snap)]) == refresh_ownership.EXIT_OK
    kinds = sorted(r["kind"] for r in read_cidr_labels(spark, labels_path).collect())
    assert kinds == ["aws_service", "internet", "internet"]
