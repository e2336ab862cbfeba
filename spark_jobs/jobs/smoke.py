"""``dredge smoke``: a tiny end-to-end check of the local stack (until the enrichment job lands
in ``make demo``): put sample flow lines into a Kinesis stream with boto3, read them back,
write them to a Delta table and a Kafka topic with Spark, and read both back."""

from __future__ import annotations

import argparse
import time
import uuid
from collections.abc import Sequence

import boto3

from spark_jobs import config
from spark_jobs.session import build_session

SAMPLE_LINES = [
    "2 123456789012 eni-0a1b2c3d 192.0.2.10 198.51.100.7 443 49152 6 10 8400 1700000000 1700000060 ACCEPT OK",
    "2 123456789012 eni-0a1b2c3d 198.51.100.7 192.0.2.10 49152 443 6 12 960 1700000000 1700000060 ACCEPT OK",
    "2 123456789012 eni-0e5f6a7b 2001:db8::10 2001:db8::20 22 50000 6 3 180 1700000000 1700000060 REJECT OK",
]


def _kinesis_roundtrip(endpoint: str | None, region: str, stream: str) -> list[str]:
    client = boto3.client("kinesis", region_name=region, endpoint_url=endpoint)
    client.create_stream(StreamName=stream, ShardCount=1)
    client.get_waiter("stream_exists").wait(
        StreamName=stream, WaiterConfig={"Delay": 1, "MaxAttempts": 30}
    )
    client.put_records(
        StreamName=stream,
        Records=[
            {"Data": line.encode(), "PartitionKey": str(i)} for i, line in enumerate(SAMPLE_LINES)
        ],
    )
    shard = client.list_shards(StreamName=stream)["Shards"][0]["ShardId"]
    it = client.get_shard_iterator(
        StreamName=stream, ShardId=shard, ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    got: list[str] = []
    deadline = time.monotonic() + 30
    while len(got) < len(SAMPLE_LINES) and time.monotonic() < deadline:
        resp = client.get_records(ShardIterator=it, Limit=100)
        got += [r["Data"].decode() for r in resp["Records"]]
        it = resp["NextShardIterator"]
    client.delete_stream(StreamName=stream)
    return got


def main(argv: Sequence[str]) -> int:
    """Run the smoke pipeline; returns 0 when every leg round-trips."""
    parser = argparse.ArgumentParser(prog="dredge smoke")
    parser.add_argument("--conf", default="conf/local.yaml")
    args = parser.parse_args(argv)
    cfg = config.load(args.conf)
    run = uuid.uuid4().hex[:8]
    lines = _kinesis_roundtrip(cfg.source.endpoint_url, cfg.source.region, f"dredge-smoke-{run}")
    print(f"kinesis: {len(lines)} records round-tripped through {cfg.source.endpoint_url}")
    spark = build_session(cfg.spark)
    df = spark.createDataFrame([(line,) for line in lines], "line string")
    table = f"{cfg.paths.resolve('root')}/smoke/{run}"
    df.write.format("delta").save(table)
    n_delta = spark.read.format("delta").load(table).count()
    print(f"delta: {n_delta} rows at {table}")
    topic = f"dredge.smoke.{run}"
    kafka = {"kafka.bootstrap.servers": cfg.kafka.bootstrap_servers}
    df.selectExpr("line AS value").write.format("kafka").options(**kafka).option(
        "topic", topic
    ).save()
    n_kafka = (
        spark.read.format("kafka")
        .options(**kafka)
        .option("subscribe", topic)
        .option("startingOffsets", "earliest")
        .load()
        .count()
    )
    print(f"kafka: {n_kafka} messages on {topic} at {cfg.kafka.bootstrap_servers}")
    ok = len(lines) == n_delta == n_kafka == len(SAMPLE_LINES)
    print("smoke: OK" if ok else "smoke: FAILED")
    return 0 if ok else 1
