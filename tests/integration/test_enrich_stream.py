"""The enrichment job end to end on real local services: kinesalite -> Spark -> Delta + Kafka,
twice over the same input (the second run must add nothing), with values checked."""

from __future__ import annotations

import gzip
import json
import uuid
from datetime import UTC

import boto3
import pytest

from spark_jobs import config
from spark_jobs.jobs.enrich_flows import run_stream
from spark_jobs.sinks.ownership import apply_observation, write_cidr_labels
from spark_jobs.sources.ownership import cidr_labels_df, label_row, read_snapshot_observation

pytestmark = pytest.mark.integration
KINESIS = "http://127.0.0.1:4567"
KAFKA = "127.0.0.1:9092"
T0 = 1_767_225_600  # 2026-01-01T00:00:00Z


def line(src, dst, start, action="ACCEPT", status="OK", eni="eni-api1", nbytes=1000):
    return f"2 111122223333 {eni} {src} {dst} 443 50000 6 10 {nbytes} {start} {start + 60} {action} {status}"


FLOWS = [
    # api (192.0.2.10) -> db (192.0.2.20), cross-region, before and after the IP moves
    ("f_api_db", line("192.0.2.10", "192.0.2.20", T0 + 60)),
    ("f_web_db", line("192.0.2.10", "192.0.2.20", T0 + 700, eni="eni-web1")),
    ("f_s3", line("192.0.2.20", "198.51.100.9", T0 + 120, eni="eni-db1")),
    ("f_future", line("192.0.2.20", "192.0.2.10", T0 + 5000, eni="eni-db1")),
    ("f_nodata", f"2 111122223333 eni-db1 - - - - - - - {T0 + 60} {T0 + 120} - NODATA"),
]
BAD_LINE = "2 111122223333 eni-x 192.0.2.10 192.0.2.20 99999 1 6 1 1 1 2 ACCEPT OK"


def snapshot(tmp_path, name, observed_at, rows):
    path = tmp_path / f"{name}.jsonl"
    with path.open("w") as fh:
        for ip, app, region, az in rows:
            fh.write(
                json.dumps(
                    {
                        "observed_at": observed_at,
                        "account_id": "111122223333",
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
                        "account_id": "111122223333",
                        "region": region,
                        "scope_only": True,
                    }
                )
                + "\n"
            )
    return str(path)


def envelope(lines, message_type="DATA_MESSAGE"):
    body = {
        "messageType": message_type,
        "owner": "111122223333",
        "logGroup": "vpc-flow-logs",
        "logStream": "eni-api1-all",
        "subscriptionFilters": ["dredge"],
        "logEvents": [
            {"id": str(i), "timestamp": T0 * 1000, "message": m} for i, m in enumerate(lines)
        ],
    }
    return gzip.compress(json.dumps(body).encode())


@pytest.fixture()
def pipeline(spark, tmp_path):
    run = uuid.uuid4().hex[:8]
    stream = f"it-enrich-{run}"
    client = boto3.client("kinesis", region_name="us-east-1", endpoint_url=KINESIS)
    client.create_stream(StreamName=stream, ShardCount=2)
    client.get_waiter("stream_exists").wait(
        StreamName=stream, WaiterConfig={"Delay": 1, "MaxAttempts": 30}
    )
    records = [
        envelope([m for _, m in FLOWS[:3]]),
        envelope([m for _, m in FLOWS[3:]] + [BAD_LINE]),
        envelope([], "CONTROL_MESSAGE"),
        b"not gzip at all",
    ]
    client.put_records(
        StreamName=stream,
        Records=[{"Data": r, "PartitionKey": str(i)} for i, r in enumerate(records)],
    )
    cfg = config.load(
        "conf/local.yaml",
        {
            "paths": {"root": str(tmp_path / "data")},
            "source": {"stream_names": [stream], "endpoint_url": KINESIS},
            "kafka": {"topic": f"it.enriched.{run}", "bootstrap_servers": KAFKA},
            "stream": {"trigger": "available_now", "query_name": f"it-{run}"},
            "spark": {"shuffle_partitions": 2},
        },
    )
    own = cfg.paths.resolve("ownership")
    # minute 0: api holds .10; minute 10: web holds .10 (api released it); db is in eu-west-1
    apply_observation(
        spark,
        own,
        read_snapshot_observation(
            spark,
            [
                snapshot(
                    tmp_path,
                    "s0",
                    "2026-01-01T00:00:00Z",
                    [
                        ("192.0.2.10", "api", "us-east-1", "us-east-1a"),
                        ("192.0.2.20", "db", "eu-west-1", "eu-west-1a"),
                    ],
                )
            ],
        ),
    )
    apply_observation(
        spark,
        own,
        read_snapshot_observation(
            spark,
            [
                snapshot(
                    tmp_path,
                    "s1",
                    "2026-01-01T00:10:00Z",
                    [
                        ("192.0.2.10", "web", "us-east-1", "us-east-1b"),
                        ("192.0.2.20", "db", "eu-west-1", "eu-west-1a"),
                    ],
                )
            ],
        ),
    )
    apply_observation(
        spark,
        own,
        read_snapshot_observation(
            spark,
            [
                snapshot(
                    tmp_path,
                    "s2",
                    "2026-01-01T00:20:00Z",
                    [
                        ("192.0.2.10", "web", "us-east-1", "us-east-1b"),
                        ("192.0.2.20", "db", "eu-west-1", "eu-west-1a"),
                    ],
                )
            ],
        ),
    )
    write_cidr_labels(
        cidr_labels_df(
            spark,
            [
                label_row("198.51.100.0/24", "aws_service", "S3", "us-east-1", "AWS:S3"),
                label_row("0.0.0.0/0", "internet", None, None, "internet"),
            ],
        ),
        cfg.paths.resolve("cidr_labels"),
    )
    yield cfg
    client.delete_stream(StreamName=stream)


def read_kafka(spark, topic):
    return [
        json.loads(r.value)
        for r in (
            spark.read.format("kafka")
            .option("kafka.bootstrap.servers", KAFKA)
            .option("subscribe", topic)
            .option("startingOffsets", "earliest")
            .option("kafka.isolation.level", "read_committed")
            .load()
            .selectExpr("CAST(value AS STRING) value")
            .collect()
        )
    ]


def test_stream_job_attributes_and_writes_each_flow_once(spark, pipeline):
    cfg = pipeline
    first = run_stream(spark, cfg)
    run_stream(spark, cfg)  # same checkpoint: nothing new
    enriched = spark.read.format("delta").load(cfg.paths.resolve("enriched"))
    rows = {
        (r.srcaddr, r.dstaddr, int(r.start_time.replace(tzinfo=UTC).timestamp())): r
        for r in enriched.collect()
        if r.log_status == "OK"
    }
    assert enriched.count() == 4  # 3 final traffic flows + 1 NODATA; the future flow is pending
    api_db = rows[("192.0.2.10", "192.0.2.20", T0 + 60)]
    assert (api_db.src_app, api_db.dst_app, api_db.cross_region) == ("api", "db", True)
    web_db = rows[("192.0.2.10", "192.0.2.20", T0 + 700)]
    assert (web_db.src_app, web_db.src_az, web_db.dst_region) == ("web", "us-east-1b", "eu-west-1")
    s3 = rows[("192.0.2.20", "198.51.100.9", T0 + 120)]
    assert (s3.dst_attribution_status, s3.dst_label, s3.dst_kind) == (
        "unattributed",
        "AWS:S3",
        "aws_service",
    )
    pending = spark.read.format("delta").load(cfg.paths.resolve("pending")).collect()
    assert [(p.srcaddr, p.dstaddr) for p in pending] == [("192.0.2.20", "192.0.2.10")]
    quarantine = spark.read.format("delta").load(cfg.paths.resolve("quarantine")).collect()
    assert sorted(q.reason for q in quarantine) == ["bad_gzip", "port_range"]
    messages = read_kafka(spark, cfg.kafka.topic)
    assert len(messages) == 3  # NODATA is not traffic; pending is not final
    by_time = {m["timestamp"]: m for m in messages}
    assert by_time[(T0 + 60) * 1000]["src_app"] == "api"
    assert by_time[(T0 + 700) * 1000]["src_app"] == "web"
    assert len({m["flow_id"] for m in messages}) == 3
    totals = first.metrics
    assert sum(m["control_messages"] for m in totals) == 1
    assert sum(m["records_in"] for m in totals) == 4
