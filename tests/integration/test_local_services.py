"""The real local pieces work together from Spark: Delta on disk, Kafka broker, kinesalite."""

from __future__ import annotations

import os
import socket
import subprocess
import time
import uuid
from pathlib import Path

import boto3
import pytest

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
KINESIS = "http://127.0.0.1:4567"
KAFKA = "127.0.0.1:9092"


def test_delta_table_write_then_read(spark, tmp_path):
    path = str(tmp_path / "t")
    rows = [(1, "192.0.2.1"), (2, "2001:db8::1")]
    spark.createDataFrame(rows, "id int, ip string").write.format("delta").save(path)
    spark.createDataFrame([(3, "198.51.100.9")], "id int, ip string").write.format("delta").mode(
        "append"
    ).save(path)
    got = sorted(tuple(r) for r in spark.read.format("delta").load(path).collect())
    assert got == [(1, "192.0.2.1"), (2, "2001:db8::1"), (3, "198.51.100.9")]
    history = spark.sql(f"DESCRIBE HISTORY delta.`{path}`").select("version").collect()
    assert sorted(r.version for r in history) == [0, 1]


def test_kafka_sink_then_read_back(spark):
    topic = f"it.kafka.{uuid.uuid4().hex[:8]}"
    df = spark.createDataFrame(
        [("k1", "v1"), ("k2", "v2"), ("k3", "v3")], "key string, value string"
    )
    df.write.format("kafka").option("kafka.bootstrap.servers", KAFKA).option("topic", topic).save()
    back = (
        spark.read.format("kafka")
        .option("kafka.bootstrap.servers", KAFKA)
        .option("subscribe", topic)
        .option("startingOffsets", "earliest")
        .load()
        .selectExpr("CAST(key AS STRING) k", "CAST(value AS STRING) v")
    )
    assert sorted(tuple(r) for r in back.collect()) == [("k1", "v1"), ("k2", "v2"), ("k3", "v3")]


def test_kinesalite_put_and_get_with_boto3(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    client = boto3.client("kinesis", region_name="us-east-1", endpoint_url=KINESIS)
    name = f"it-{uuid.uuid4().hex[:8]}"
    client.create_stream(StreamName=name, ShardCount=2)
    client.get_waiter("stream_exists").wait(
        StreamName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 30}
    )
    sent = {f"record-{i}".encode() for i in range(20)}
    resp = client.put_records(
        StreamName=name, Records=[{"Data": d, "PartitionKey": d.decode()} for d in sorted(sent)]
    )
    assert resp["FailedRecordCount"] == 0
    seqs = [r["SequenceNumber"] for r in resp["Records"]]
    assert all(len(s) >= 50 and s.isdigit() for s in seqs)  # realistic 56-digit sequence numbers
    got: set[bytes] = set()
    for shard in client.list_shards(StreamName=name)["Shards"]:
        it = client.get_shard_iterator(
            StreamName=name, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        got |= {r["Data"] for r in client.get_records(ShardIterator=it)["Records"]}
    assert got == sent
    client.delete_stream(StreamName=name)


def _services(*args: str, timeout: float = 120, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(ROOT / "scripts/services.sh"), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **env},
    )


def _free_ports(count: int) -> list[int]:
    socks = [socket.socket() for _ in range(count)]
    try:
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in socks]
    finally:
        for sock in socks:
            sock.close()


def _listening(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=1).close()
    except OSError:
        return False
    return True


def _wait_closed(port: int, timeout_s: float = 10) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not _listening("127.0.0.1", port):
            return True
        time.sleep(0.1)
    return False


def test_services_up_twice_is_harmless():
    out = _services("up")
    assert out.returncode == 0, out.stderr
    assert "already running" in out.stdout
    status = _services("status")
    assert "kinesis: running" in status.stdout and "kafka: running" in status.stdout


def test_taken_port_gives_a_clear_error(tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        out = _services(
            "up", "kinesis", DREDGE_KINESIS_PORT=str(port), DREDGE_RUN_DIR=str(tmp_path)
        )
    assert out.returncode != 0
    assert f"port 127.0.0.1:{port} is already taken" in out.stderr


def test_kinesis_service_starts_and_stops_on_its_own_port(tmp_path):
    (port,) = _free_ports(1)
    env = {"DREDGE_KINESIS_PORT": str(port), "DREDGE_RUN_DIR": str(tmp_path)}
    up = _services("up", "kinesis", **env)
    assert up.returncode == 0, up.stderr
    try:
        assert _listening("127.0.0.1", port)
        # bound to 127.0.0.1 only: another loopback address (all of 127/8 is local on Linux)
        # reaches a socket bound to 0.0.0.0, but not this one
        assert not _listening("127.0.0.2", port)
    finally:
        down = _services("down", "kinesis", **env)
    assert "kinesis: stopped" in down.stdout, down.stderr
    assert _wait_closed(port), "kinesalite still listening after services down"


def test_kafka_broker_starts_serves_and_stops_cleanly_on_its_own_ports(tmp_path):
    from confluent_kafka.admin import AdminClient

    port, controller = _free_ports(2)
    env = {
        "DREDGE_KAFKA_PORT": str(port),
        "DREDGE_KAFKA_CONTROLLER_PORT": str(controller),
        "DREDGE_RUN_DIR": str(tmp_path),
    }
    up = _services("up", "kafka", timeout=300, **env)
    assert up.returncode == 0, up.stderr
    try:
        assert f"kafka: broker ready on 127.0.0.1:{port}" in up.stdout
        metadata = AdminClient({"bootstrap.servers": f"127.0.0.1:{port}"}).list_topics(timeout=30)
        assert [b.port for b in metadata.brokers.values()] == [port]
        assert not _listening("127.0.0.2", port)
        assert not _listening("127.0.0.2", controller)
    finally:
        down = _services("down", "kafka", **env)
    # "stopped" means it exited on SIGTERM; a broker that needed SIGKILL says "killed"
    assert "kafka: stopped" in down.stdout, down.stderr
    assert "killed" not in down.stderr
    assert _wait_closed(port) and _wait_closed(controller)
    assert not (tmp_path / "kafka-data").exists()
    assert not (tmp_path / "kafka.pid").exists()
