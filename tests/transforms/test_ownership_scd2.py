"""SCD2 ownership intervals: a sequence of snapshots applied to a Delta table, exact intervals."""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from spark_jobs.sinks.ownership import StaleObservationError, apply_observation
from spark_jobs.sources.ownership import (
    SnapshotError,
    peek_observed_at,
    read_freshness,
    read_ownership,
    read_snapshot_observation,
    read_table_properties,
)
from spark_jobs.transforms.ownership import (
    OWNERSHIP_SCHEMA,
    SCOPE_SCHEMA,
    plan_ownership_changes,
    to_observed_ips,
)

A, B, C = "111111111111", "222222222222", "333333333333"
T1, T2, T3 = "2024-05-01T00:00:00Z", "2024-05-01T00:05:00Z", "2024-05-01T00:10:00Z"


def line(at: str, acct: str, region: str, ip: str | None, app: str, res: str, **kw: Any) -> dict:
    row = {
        "observed_at": at,
        "account_id": acct,
        "region": region,
        "ip": ip,
        "app": app,
        "cluster": f"{app}-prod",
        "az": f"{region}a",
        "vpc_id": "vpc-1",
        "subnet_id": "subnet-1",
        "resource_id": res,
        "kind": "instance",
        "eni_id": f"eni-{res}",
    }
    row.update(kw)
    return row


def write_jsonl(path: Path, rows: list[dict]) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def table(spark: SparkSession, path: str) -> list[tuple]:
    """(ip, app, resource_id, valid_from, valid_to, last_seen) sorted; times as UTC text."""
    fmt = "yyyy-MM-dd'T'HH:mm:ss'Z'"
    df = read_ownership(spark, path).select(
        "ip",
        "app",
        "resource_id",
        F.date_format("valid_from", fmt),
        F.date_format("valid_to", fmt),
        F.date_format("last_seen", fmt),
    )
    return sorted(tuple(r) for r in df.collect())


def overlaps(spark: SparkSession, path: str) -> list[tuple]:
    df = read_ownership(spark, path)
    a, b = df.alias("a"), df.alias("b")
    far = F.lit("9999-01-01").cast("timestamp")
    cond = (
        (F.col("a.ip_key") == F.col("b.ip_key"))
        & (F.col("a.valid_from") < F.col("b.valid_from"))
        & (F.coalesce(F.col("a.valid_to"), far) > F.col("b.valid_from"))
    )
    return [tuple(r) for r in a.join(b, cond, how="inner").select("a.ip", "b.ip").collect()]


@pytest.fixture()
def snapshots(tmp_path: Path) -> dict[str, str]:
    t1 = [
        line(T1, A, "us-east-1", "10.0.0.1", "api", "i-1"),
        line(T1, A, "us-east-1", "10.0.0.2", "api", "i-1"),  # secondary IP of the same ENI
        line(T1, A, "us-east-1", "2001:DB8:0:0:0:0:0:1", "api", "i-1"),  # IPv6, odd spelling
        line(T1, B, "eu-west-1", "192.0.2.10", "web", "i-2"),
        line(T1, A, "us-east-1", "-", "junk", "i-9"),  # not an address: dropped
    ]
    t2 = [
        line(T2, A, "us-east-1", "10.0.0.1", "batch", "i-3"),  # moved to another app
        line(T2, A, "us-east-1", "2001:db8::1", "api", "i-1"),  # unchanged; 10.0.0.2 gone
        line(T2, B, "eu-west-1", "192.0.2.10", "web", "i-2"),
    ]
    t3 = [
        line(T3, A, "us-east-1", "10.0.0.1", "batch", "i-3"),
        line(T3, A, "us-east-1", "10.0.0.2", "api", "i-1"),  # comes back
        # account B / eu-west-1 failed: not covered, its IPs stay open; IPv6 gone from A
        {"observed_at": T3, "account_id": C, "region": "ap-south-1", "scope_only": True},
    ]
    return {
        name: write_jsonl(tmp_path / f"{name}.jsonl", rows)
        for name, rows in (("t1", t1), ("t2", t2), ("t3", t3))
    }


def test_snapshot_sequence_exact_intervals(
    spark: SparkSession, tmp_path: Path, snapshots: dict[str, str]
) -> None:
    path = str(tmp_path / "ownership")
    assert read_freshness(spark, path) is None

    r1 = apply_observation(spark, path, read_snapshot_observation(spark, [snapshots["t1"]]))
    assert (r1.closed, r1.opened) == (0, 4)
    assert table(spark, path) == [
        ("10.0.0.1", "api", "i-1", T1, None, None),
        ("10.0.0.2", "api", "i-1", T1, None, None),
        ("192.0.2.10", "web", "i-2", T1, None, None),
        ("2001:db8::1", "api", "i-1", T1, None, None),
    ]
    assert read_freshness(spark, path) == datetime(2024, 5, 1, tzinfo=UTC)

    r2 = apply_observation(spark, path, read_snapshot_observation(spark, [snapshots["t2"]]))
    assert (r2.closed, r2.opened) == (2, 1)
    assert table(spark, path) == [
        ("10.0.0.1", "api", "i-1", T1, T2, T1),  # last seen at T1
        ("10.0.0.1", "batch", "i-3", T2, None, None),
        ("10.0.0.2", "api", "i-1", T1, T2, T1),
        ("192.0.2.10", "web", "i-2", T1, None, None),
        ("2001:db8::1", "api", "i-1", T1, None, None),
    ]

    obs3 = read_snapshot_observation(spark, [snapshots["t3"]])
    assert obs3.scopes == ((A, "us-east-1"), (C, "ap-south-1"))
    r3 = apply_observation(spark, path, obs3)
    assert (r3.closed, r3.opened) == (1, 1)
    expected = [
        ("10.0.0.1", "api", "i-1", T1, T2, T1),  # last seen at T1
        ("10.0.0.1", "batch", "i-3", T2, None, None),
        ("10.0.0.2", "api", "i-1", T1, T2, T1),
        ("10.0.0.2", "api", "i-1", T3, None, None),
        ("192.0.2.10", "web", "i-2", T1, None, None),  # its scope was not covered: still open
        ("2001:db8::1", "api", "i-1", T1, T3, T2),  # confirmed at T2
    ]
    assert table(spark, path) == expected
    assert overlaps(spark, path) == []
    row = read_ownership(spark, path).filter("ip = '2001:db8::1'").first()
    assert row is not None
    assert row["ip_key"] == "20010db8000000000000000000000001"
    assert (row["account_id"], row["region"], row["cluster"]) == (A, "us-east-1", "api-prod")
    assert row["source"] == "snapshot:t1.jsonl"

    # idempotent re-run: nothing changes, not even the Delta version
    version = spark.sql(f"DESCRIBE HISTORY delta.`{path}` LIMIT 1").first()["version"]  # type: ignore[index]
    again = apply_observation(spark, path, read_snapshot_observation(spark, [snapshots["t3"]]))
    assert again.skipped and (again.closed, again.opened) == (0, 0)
    assert spark.sql(f"DESCRIBE HISTORY delta.`{path}` LIMIT 1").first()["version"] == version  # type: ignore[index]

    # a stale snapshot is rejected and leaves the table as it was
    with pytest.raises(StaleObservationError, match="older than the ownership table's freshness"):
        apply_observation(spark, path, read_snapshot_observation(spark, [snapshots["t2"]]))
    assert table(spark, path) == expected
    assert read_freshness(spark, path) == datetime(2024, 5, 1, 0, 10, tzinfo=UTC)


def test_replanning_an_applied_observation_is_empty(
    spark: SparkSession, tmp_path: Path, snapshots: dict[str, str]
) -> None:
    """The freshness marker may lag the MERGE; re-planning must then change nothing."""
    path = str(tmp_path / "ownership")
    apply_observation(spark, path, read_snapshot_observation(spark, [snapshots["t1"]]))
    obs2 = read_snapshot_observation(spark, [snapshots["t2"]])
    apply_observation(spark, path, obs2)
    scopes_df = spark.createDataFrame(list(obs2.scopes), SCOPE_SCHEMA)
    plan = plan_ownership_changes(
        read_ownership(spark, path), to_observed_ips(obs2.rows_df), scopes_df, obs2.observed_at
    )
    assert plan.collect() == []


def test_partial_failure_is_recorded_and_closes_nothing(
    spark: SparkSession, tmp_path: Path, snapshots: dict[str, str]
) -> None:
    path = str(tmp_path / "ownership")
    apply_observation(spark, path, read_snapshot_observation(spark, [snapshots["t1"]]))
    # the whole observation saw nothing: A/us-east-1 covered and empty, B/eu-west-1 failed
    empty = read_snapshot_observation(spark, [snapshots["t2"]])
    failed = type(empty)(
        observed_at=datetime(2024, 5, 1, 0, 5, tzinfo=UTC),
        rows_df=empty.rows_df.limit(0),
        scopes=((A, "us-east-1"),),
        failed=(((B, "eu-west-1"), "AccessDenied"),),
        label="aws",
    )
    result = apply_observation(spark, path, failed)
    assert (result.closed, result.opened) == (3, 0)
    assert [r for r in table(spark, path) if r[4] is None] == [
        ("192.0.2.10", "web", "i-2", T1, None, None)
    ]
    props = read_table_properties(spark, path)
    assert props is not None
    assert props["dredge.failed_scopes"] == f"{B}/eu-west-1"
    assert props["dredge.freshness"] == "2024-05-01T00:05:00.000000Z"


def test_plan_moves_ip_across_uncovered_scope(spark: SparkSession) -> None:
    """An IP seen under a new owner closes its old interval even if the old scope is not covered."""
    at = datetime(2024, 5, 1, 1, 0, tzinfo=UTC)
    old = spark.createDataFrame(
        [
            (
                "198.51.100.7",
                "00000000000000000000ffffc6336407",
                "api",
                "api-prod",
                B,
                "eu-west-1",
                None,
                None,
                None,
                "i-1",
                "instance",
                "eni-1",
                None,
                "s",
                datetime(2024, 5, 1, tzinfo=UTC),
                None,
                None,
            ),
            (
                "198.51.100.8",
                "00000000000000000000ffffc6336408",
                "api",
                "api-prod",
                B,
                "eu-west-1",
                None,
                None,
                None,
                "i-1",
                "instance",
                "eni-1",
                None,
                "s",
                datetime(2024, 5, 1, tzinfo=UTC),
                None,
                None,
            ),
        ],
        OWNERSHIP_SCHEMA,
    )
    raw = spark.createDataFrame(
        [
            (
                "198.51.100.7",
                "web",
                None,
                A,
                "us-east-1",
                None,
                None,
                None,
                "i-5",
                "instance",
                "eni-5",
                None,
                "x",
            ),
            (
                None,
                "junk",
                None,
                A,
                "us-east-1",
                None,
                None,
                None,
                "i-6",
                "instance",
                "eni-6",
                None,
                "x",
            ),
        ],
        "ip string, app string, cluster string, account_id string, region string, az string, "
        "vpc_id string, subnet_id string, resource_id string, kind string, eni_id string, "
        "eni_attached_at string, source string",
    )
    scopes = spark.createDataFrame([(A, "us-east-1")], SCOPE_SCHEMA)
    plan = plan_ownership_changes(old, to_observed_ips(raw), scopes, at)
    got = sorted(
        (r["action"], r["ip"], r["app"], str(r["valid_from"]), str(r["valid_to"]))
        for r in plan.select(
            "action",
            "ip",
            "app",
            F.date_format("valid_from", "HH:mm").alias("valid_from"),
            F.date_format("valid_to", "HH:mm").alias("valid_to"),
        ).collect()
    )
    assert got == [
        ("close", "198.51.100.7", "api", "00:00", "01:00"),
        ("open", "198.51.100.7", "web", "01:00", "None"),
    ]


def test_attach_times_are_kept_and_a_new_one_is_a_new_interval(
    spark: SparkSession, tmp_path: Path
) -> None:
    at1, at2 = "2024-04-30T23:58:00Z", "2024-05-01T00:03:00Z"
    t1 = [
        line(T1, A, "us-east-1", "10.0.0.1", "api", "i-1", eni_attached_at=at1),
        line(T1, A, "us-east-1", "10.0.0.2", "api", "i-1", eni_attached_at="yesterday"),
        line(T1, A, "us-east-1", "10.0.0.3", "api", "i-1"),
    ]
    # the same owner, attached again (its ENI moved away and back): a new interval
    t2 = [
        line(T2, A, "us-east-1", "10.0.0.1", "api", "i-1", eni_attached_at=at2),
        line(T2, A, "us-east-1", "10.0.0.2", "api", "i-1", eni_attached_at="yesterday"),
        line(T2, A, "us-east-1", "10.0.0.3", "api", "i-1"),
    ]
    path = str(tmp_path / "ownership")
    for name, rows in (("t1", t1), ("t2", t2)):
        obs = read_snapshot_observation(spark, [write_jsonl(tmp_path / f"{name}.jsonl", rows)])
        apply_observation(spark, path, obs)
    fmt = "yyyy-MM-dd'T'HH:mm:ss'Z'"
    got = sorted(
        tuple(r)
        for r in read_ownership(spark, path)
        .select("ip", F.date_format("eni_attached_at", fmt), F.date_format("valid_to", fmt))
        .collect()
    )
    assert got == [
        ("10.0.0.1", at1, T2),
        ("10.0.0.1", at2, None),
        ("10.0.0.2", None, None),  # not a time: unknown, and the address is still observed
        ("10.0.0.3", None, None),
    ]


def test_csv_snapshot_and_mixed_times(spark: SparkSession, tmp_path: Path) -> None:
    path = tmp_path / "inv.csv"
    fields = list(line(T1, A, "us-east-1", "10.0.0.1", "api", "i-1"))
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        writer.writerow(line(T1, A, "us-east-1", "10.0.0.1", "api", "i-1"))
        writer.writerow(line(T1, B, "eu-west-1", "2001:db8::a", "web", "i-2"))
    obs = read_snapshot_observation(spark, [str(path)])
    assert peek_observed_at(str(path)) == obs.observed_at == datetime(2024, 5, 1, tzinfo=UTC)
    assert obs.scopes == ((A, "us-east-1"), (B, "eu-west-1"))
    rows = sorted(
        tuple(r) for r in to_observed_ips(obs.rows_df).select("ip", "app", "source").collect()
    )
    assert rows == [
        ("10.0.0.1", "api", "snapshot:inv.csv"),
        ("2001:db8::a", "web", "snapshot:inv.csv"),
    ]

    mixed = write_jsonl(
        tmp_path / "mixed.jsonl",
        [
            line(T1, A, "us-east-1", "10.0.0.1", "a", "i"),
            line(T2, A, "us-east-1", "10.0.0.2", "a", "i"),
        ],
    )
    with pytest.raises(SnapshotError, match="expected one observed_at"):
        read_snapshot_observation(spark, [mixed])


def test_last_seen_and_freshness_are_per_scope(spark: SparkSession, tmp_path: Path) -> None:
    """A newer observation of scope A says nothing about scope B: when B's interval closes,
    its last_seen is B's own previous observation, and each scope's time is recorded."""
    path = str(tmp_path / "ownership")
    snaps = {
        "t1": [line(T1, B, "eu-west-1", "192.0.2.10", "web", "i-2")],
        "t2": [line(T2, A, "us-east-1", "10.0.0.1", "api", "i-1")],
        "t3": [line(T3, B, "eu-west-1", "192.0.2.10", "mail", "i-4")],
    }
    for name, rows in snaps.items():
        f = write_jsonl(tmp_path / f"{name}.jsonl", rows)
        apply_observation(spark, path, read_snapshot_observation(spark, [f]))
    assert table(spark, path) == [
        ("10.0.0.1", "api", "i-1", T2, None, None),
        ("192.0.2.10", "mail", "i-4", T3, None, None),
        ("192.0.2.10", "web", "i-2", T1, T3, T1),  # not T2: A's observation never saw B
    ]
    props = read_table_properties(spark, path) or {}
    assert json.loads(props["dredge.scope_freshness"]) == {
        f"{A}/us-east-1": "2024-05-01T00:05:00.000000Z",
        f"{B}/eu-west-1": "2024-05-01T00:10:00.000000Z",
    }
