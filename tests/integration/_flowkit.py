"""Small builders shared by the enrichment integration tests (not a test module)."""

from __future__ import annotations

import gzip
import json
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3

KINESIS = "http://127.0.0.1:4567"
KAFKA = "127.0.0.1:9092"
ACCOUNT = "111122223333"
T0 = 1_767_225_600  # 2026-01-01T00:00:00Z


def flow_line(
    src: str,
    dst: str,
    start: int,
    *,
    eni: str = "eni-api1",
    action: str = "ACCEPT",
    nbytes: int = 1000,
) -> str:
    """A v2 default-format flow line."""
    return f"2 {ACCOUNT} {eni} {src} {dst} 443 50000 6 10 {nbytes} {start} {start + 60} {action} OK"


def envelope(lines: list[str], message_type: str = "DATA_MESSAGE") -> bytes:
    """A gzip CloudWatch Logs subscription envelope holding ``lines``."""
    body = {
        "messageType": message_type,
        "owner": ACCOUNT,
        "logGroup": "vpc-flow-logs",
        "logStream": "eni-api1-all",
        "subscriptionFilters": ["dredge"],
        "logEvents": [
            {"id": str(i), "timestamp": T0 * 1000, "message": m} for i, m in enumerate(lines)
        ],
    }
    return gzip.compress(json.dumps(body).encode())


def write_snapshot(
    folder: Path, name: str, observed_at: str, rows: list[tuple[str, str, str, str]]
) -> str:
    """An inventory snapshot file (JSONL contract) covering us-east-1 and eu-west-1."""
    path = folder / f"{name}.jsonl"
    with path.open("w") as fh:
        for ip, app, region, az in rows:
            fh.write(
                json.dumps(
                    {
                        "observed_at": observed_at,
                        "account_id": ACCOUNT,
                        "region": region,
                        "ip": ip,
                        "app": app,
                        "cluster": f"{app}-prod",
                        "az": az,
                        "vpc_id": "vpc-1",
                        "subnet_id": "subnet-1",
                        "resource_id": f"eni-{app}1",
                        "kind": "instance",
                    }
                )
                + "\n"
            )
        for region in ("us-east-1", "eu-west-1"):
            fh.write(
                json.dumps(
                    {
                        "observed_at": observed_at,
                        "account_id": ACCOUNT,
                        "region": region,
                        "scope_only": True,
                    }
                )
                + "\n"
            )
    return str(path)


def kinesis_client() -> Any:
    return boto3.client("kinesis", region_name="us-east-1", endpoint_url=KINESIS)


def create_stream(shards: int = 2) -> str:
    """A new kinesalite stream with a unique name, ACTIVE."""
    name = f"it-{uuid.uuid4().hex[:10]}"
    client = kinesis_client()
    client.create_stream(StreamName=name, ShardCount=shards)
    client.get_waiter("stream_exists").wait(
        StreamName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 30}
    )
    return name


def put(stream: str, records: list[bytes]) -> None:
    resp = kinesis_client().put_records(
        StreamName=stream, Records=[{"Data": r, "PartitionKey": uuid.uuid4().hex} for r in records]
    )
    assert resp["FailedRecordCount"] == 0


def overrides(tmp_path: Path, stream: str, run: str, trigger: str) -> dict[str, Any]:
    """Config overrides pointing every table, the stream and the topic at test-local names."""
    return {
        "paths": {"root": str(tmp_path / "data")},
        "source": {"stream_names": [stream], "endpoint_url": KINESIS},
        "kafka": {"topic": f"it.enriched.{run}", "bootstrap_servers": KAFKA},
        "stream": {"trigger": trigger, "query_name": f"it-{run}", "trigger_interval": "1 second"},
        "spark": {"shuffle_partitions": 2},
    }


def committed_messages(spark: Any, topic: str) -> Any:
    """The messages of ``topic`` a ``read_committed`` consumer sees, as a batch DataFrame."""
    return (
        spark.read.format("kafka")
        .option("kafka.bootstrap.servers", KAFKA)
        .option("subscribe", topic)
        .option("startingOffsets", "earliest")
        .option("kafka.isolation.level", "read_committed")
        .load()
    )


def rollup_messages(spark: Any, topic: str) -> list[tuple[str, dict[str, Any]]]:
    """(key, value as a dict) of every committed message of ``topic``."""
    rows = committed_messages(spark, topic).selectExpr(
        "CAST(key AS STRING) k", "CAST(value AS STRING) v"
    )
    return [(r.k, json.loads(r.v)) for r in rows.collect()]


def flows_by_minute_and_apps(
    messages: list[tuple[str, dict[str, Any]]],
) -> dict[tuple, tuple[int, int]]:
    """(minute in epoch ms, src_app, dst_app) -> (flows, bytes) the messages carry, added up
    as Druid does."""
    out: dict[tuple, tuple[int, int]] = {}
    for _, m in messages:
        group = (m["timestamp"], m.get("src_app"), m.get("dst_app"))
        flows, sent = out.get(group, (0, 0))
        out[group] = (flows + m["flows"], sent + (m.get("bytes") or 0))
    return out


def counted_by_minute_and_apps(enriched: Any) -> dict[tuple, tuple[int, int]]:
    """(minute in epoch ms, src_app, dst_app) -> (flows, bytes) of the enriched rows Druid
    counts."""
    from pyspark.sql import functions as F

    minute = F.unix_millis(F.date_trunc("minute", "start_time")).alias("m")
    counted = enriched.where(F.col("is_traffic") & ~F.col("is_duplicate_view"))
    rows = counted.groupBy(minute, "src_app", "dst_app").agg(
        F.count(F.lit(1)).alias("n"), F.sum("bytes").alias("b")
    )
    return {(r.m, r.src_app, r.dst_app): (r.n, r.b or 0) for r in rows.collect()}


def copy_dimensions(source: Callable[[str], str], cfg: Any) -> None:
    """Copy the ownership and CIDR-label tables (``source(name)``: where each is) to ``cfg``'s
    paths: a job only reads them, and a Delta table's log names its files relative to the
    table, so a copy is the same table without applying its snapshots again."""
    for table in ("ownership", "cidr_labels"):
        shutil.copytree(source(table), cfg.paths.resolve(table))
