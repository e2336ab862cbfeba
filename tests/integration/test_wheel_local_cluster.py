"""The built wheel runs under ``spark-submit`` in ``local-cluster`` mode.

``local-cluster[2,1,1024]`` starts a standalone master, two workers and two executor JVMs, so
every task - the ``dredge-kinesis`` reader, the decode/parse/attribution transforms and the
transactional Kafka producer tasks - runs in a separate process that unpickles it: nothing can
lean on driver state. The package comes only from the wheel (``pip install --no-deps
--target``, plus ``--py-files``); the repository is on no path. The submitted driver runs the
real subcommands through ``spark_jobs.cli.main`` (what ``dredge_submit.py`` and the console
script call): ``refresh-ownership`` from snapshot files, then ``stream`` with ``availableNow``
against kinesalite and the Kafka broker; ``dredge-kinesis`` registers itself on the way.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import signal
import subprocess
import sys
import uuid
import zipfile
from pathlib import Path

import boto3
import pytest
from _flowkit import write_snapshot

from spark_jobs import console

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]
ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
KINESIS = "http://127.0.0.1:4567"
KAFKA = "127.0.0.1:9092"
MASTER = "local-cluster[2,1,1024]"
SUBMIT_TIMEOUT_S = 540  # ~1.5 min on an idle 2-core machine; far more when it is shared
T0 = 1_767_225_600  # 2026-01-01T00:00:00Z
FLOWS = [
    f"2 111122223333 eni-api1 192.0.2.10 192.0.2.20 443 50000 6 10 1000 {T0 + 60} {T0 + 120} ACCEPT OK",
    f"2 111122223333 eni-db1 2001:db8::20 198.51.100.9 5432 40000 6 3 300 {T0 + 90} {T0 + 150} ACCEPT OK",
]
BAD_PORT = f"2 111122223333 eni-x 192.0.2.10 192.0.2.20 99999 1 6 1 1 {T0} {T0 + 1} ACCEPT OK"

DRIVER = """
import json, sys
from pathlib import Path
import spark_jobs
from spark_jobs import cli, config
from spark_jobs.session import build_session

conf, snapshots, ip_ranges, out = sys.argv[1], sys.argv[2], sys.argv[3], Path(sys.argv[4])
codes = {
    "refresh": cli.main(
        ["refresh-ownership", "--conf", conf, "--snapshot", snapshots, "--ip-ranges", ip_ranges]
    ),
    "stream": cli.main(["stream", "--conf", conf]),
}
cfg = config.load(conf)
spark = build_session(cfg.spark)  # the session both commands ran on

def where(batches):
    import os, pandas as pd, spark_jobs
    pid = os.getpid()  # walk up to the JVM that started this Python worker
    while pid > 1 and b"java" not in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\\0")[0]:
        pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    jvm = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    for _ in batches:
        yield pd.DataFrame({"module": [spark_jobs.__file__], "jvm_pid": [pid],
                            "is_executor": ["CoarseGrainedExecutorBackend" in jvm]})

def table(name, *cols):
    df = spark.read.format("delta").load(cfg.paths.resolve(name))
    return [r.asDict() for r in df.select(*cols).collect()]

kafka = (
    spark.read.format("kafka").option("kafka.bootstrap.servers", cfg.kafka.bootstrap_servers)
    .option("subscribe", cfg.kafka.topic).option("startingOffsets", "earliest")
    .option("kafka.isolation.level", "read_committed").load()
)
result = {
    "codes": codes,
    "master": spark.conf.get("spark.master"),
    "driver_module": spark_jobs.__file__,
    "enriched": table(
        "enriched", "srcaddr", "dstaddr", "bytes", "origin", "flow_id",
        "src_app", "dst_app", "cross_region", "dst_attribution_status", "dst_kind", "dst_label",
    ),
    "quarantine": table("quarantine", "reason"),
    "kafka": [json.loads(r.value) for r in kafka.selectExpr("CAST(value AS STRING) value").collect()],
    "tasks": [r.asDict() for r in spark.range(0, 4, 1, 4).mapInPandas(
        where, "module string, jvm_pid long, is_executor boolean").collect()],
}
out.write_text(json.dumps(result, default=str))
"""


def _envelope(lines: list[str]) -> bytes:
    events = [{"id": str(i), "timestamp": T0 * 1000, "message": m} for i, m in enumerate(lines)]
    body = {
        "messageType": "DATA_MESSAGE",
        "owner": "111122223333",
        "logGroup": "vpc-flow-logs",
        "logStream": "eni-all",
        "subscriptionFilters": ["dredge"],
        "logEvents": events,
    }
    return gzip.compress(json.dumps(body).encode())


@pytest.fixture()
def stream_name():
    name = f"it-wheel-{uuid.uuid4().hex[:8]}"
    client = boto3.client(
        "kinesis",
        region_name="us-east-1",
        endpoint_url=KINESIS,
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    client.create_stream(StreamName=name, ShardCount=2)
    client.get_waiter("stream_exists").wait(
        StreamName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 30}
    )
    records = [_envelope(FLOWS), _envelope([BAD_PORT])]
    client.put_records(
        StreamName=name,
        Records=[{"Data": r, "PartitionKey": str(i)} for i, r in enumerate(records)],
    )
    yield name
    client.delete_stream(StreamName=name)


@pytest.fixture(scope="module")
def wheel_site(tmp_path_factory):
    dist = tmp_path_factory.mktemp("dist")
    env = {**os.environ, "DIST_DIR": str(dist), "PYTHON": sys.executable}
    subprocess.run([str(ROOT / "scripts/build.sh")], check=True, env=env, capture_output=True)
    wheels = sorted(dist.glob("dredge-*.whl"))
    assert len(wheels) == 1, wheels
    site = dist / "site"
    pip = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(site)]
    subprocess.run([*pip, str(wheels[0])], check=True)
    return wheels[0], site, dist / "dredge_submit.py"


def _conf(tmp_path: Path, stream: str) -> Path:
    conf = tmp_path / "it.yaml"
    run = uuid.uuid4().hex[:8]
    overlay = {
        "extends": str(ROOT / "conf/local.yaml"),
        "spark": {"master": MASTER, "shuffle_partitions": 2},
        "source": {"stream_names": [stream], "endpoint_url": KINESIS},
        "paths": {"root": str(tmp_path / "data")},
        "kafka": {"bootstrap_servers": KAFKA, "topic": f"it.wheel.{run}"},
        "stream": {"trigger": "available_now", "query_name": f"it-wheel-{run}"},
    }
    conf.write_text(json.dumps(overlay))  # JSON is YAML
    return conf


def _ownership_inputs(tmp_path: Path) -> tuple[Path, Path]:
    """Snapshot files (before and after the flows: owners confirmed) and an ip-ranges file."""
    snapshots = tmp_path / "snapshots"
    snapshots.mkdir()
    owners = [
        ("192.0.2.10", "api", "us-east-1", "us-east-1a"),
        ("192.0.2.20", "db", "eu-west-1", "eu-west-1a"),
        ("2001:db8::20", "db", "eu-west-1", "eu-west-1a"),
    ]
    write_snapshot(snapshots, "s0", "2026-01-01T00:00:00Z", owners)
    write_snapshot(snapshots, "s1", "2026-01-01T00:05:00Z", owners)
    ip_ranges = tmp_path / "ip-ranges.json"
    prefix = {"ip_prefix": "198.51.100.0/24", "region": "us-east-1", "service": "S3"}
    ip_ranges.write_text(json.dumps({"prefixes": [prefix], "ipv6_prefixes": []}))
    return snapshots, ip_ranges


def _submit(cmd: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    # own process group: on timeout the driver, master, workers and executors all go
    proc = subprocess.Popen(
        cmd, cwd=cwd, env=env, text=True, start_new_session=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        out, err = proc.communicate(timeout=SUBMIT_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"spark-submit timed out after {SUBMIT_TIMEOUT_S}s:\n{err[-3000:]}")
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def test_wheel_runs_the_jobs_on_separate_executors(tmp_path, stream_name, wheel_site):
    wheel, site, _ = wheel_site
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER)
    out = tmp_path / "result.json"
    snapshots, ip_ranges = _ownership_inputs(tmp_path)
    jars = ",".join(sorted(str(p) for p in (ROOT / ".jars/spark").glob("*.jar")))
    env = {**_wheel_env(site), console.METRICS_ENV: str(tmp_path / "metrics.jsonl")}
    cmd = [
        str(VENV_BIN / "spark-submit"),
        "--master", MASTER,
        "--conf", "spark.driver.host=127.0.0.1",
        "--conf", "spark.ui.enabled=false",
        "--jars", jars,
        "--py-files", str(wheel),
        str(driver), str(_conf(tmp_path, stream_name)), str(snapshots), str(ip_ranges), str(out),
    ]  # fmt: skip
    proc = _submit(cmd, tmp_path, env)
    (tmp_path / "submit.stderr").write_text(proc.stderr)
    (tmp_path / "submit.stdout").write_text(proc.stdout)
    assert proc.returncode == 0, proc.stderr[-4000:]
    result = json.loads(out.read_text())

    assert result["codes"] == {"refresh": 0, "stream": 0}
    assert result["master"] == MASTER
    repo = str(ROOT / "spark_jobs")
    modules = [result["driver_module"]] + [t["module"] for t in result["tasks"]]
    assert not any(m.startswith(repo) for m in modules), modules
    assert all(t["is_executor"] for t in result["tasks"]), result["tasks"]
    assert len({t["jvm_pid"] for t in result["tasks"]}) == 2  # both executor JVMs ran tasks

    rows = {(r["srcaddr"], r["dstaddr"]): r for r in result["enriched"]}
    assert set(rows) == {("192.0.2.10", "192.0.2.20"), ("2001:db8::20", "198.51.100.9")}
    api_db = rows[("192.0.2.10", "192.0.2.20")]
    assert (api_db["src_app"], api_db["dst_app"], api_db["cross_region"]) == ("api", "db", True)
    to_s3 = rows[("2001:db8::20", "198.51.100.9")]
    assert to_s3["src_app"] == "db"
    assert (to_s3["dst_attribution_status"], to_s3["dst_kind"], to_s3["dst_label"]) == (
        "unattributed",
        "aws_service",
        "aws:S3:us-east-1",
    )
    assert all(r["origin"].startswith(f"kinesis:{stream_name}/shardId-") for r in rows.values())
    assert [q["reason"] for q in result["quarantine"]] == ["port_range"]
    # written by the transactional producer tasks on the executors, read back read_committed
    # (one per minute and dimensions: the two flows' source apps differ)
    sent = {(m["bytes"], m["src_app"], m["flows"]) for m in result["kafka"]}
    assert sent == {(r["bytes"], r["src_app"], 1) for r in rows.values()}
    assert len(result["kafka"]) == 2
    # the batch writer's metrics in the metrics file, a readable line per batch on the console
    written = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    batches = [x["dredge_batch"] for x in written if "dredge_batch" in x]
    assert sum(b["flows_final"] for b in batches) == 2
    assert [x for x in proc.stdout.splitlines() if x.startswith("batch ")] != []
    assert '"dredge_batch"' not in proc.stdout


def test_wheel_leaves_spark_and_delta_to_the_cluster(wheel_site):
    wheel, site, submit_main = wheel_site
    with zipfile.ZipFile(wheel) as whl:
        names = whl.namelist()
        meta = next(n for n in names if n.endswith(".dist-info/METADATA"))
        requires = [
            line.split(":", 1)[1].strip()
            for line in whl.read(meta).decode().splitlines()
            if line.startswith("Requires-Dist:")
        ]
        entry_points = whl.read(meta.replace("METADATA", "entry_points.txt")).decode()
    assert "spark_jobs/py.typed" in names
    assert "spark_jobs/log4j2.properties" in names  # the local JVMs' logging (session.py)
    assert "dredge = spark_jobs.cli:main" in entry_points
    unconditional = {re.split(r"[<>=!~\[; ]", r, maxsplit=1)[0] for r in requires if ";" not in r}
    assert {"boto3", "pyyaml", "confluent-kafka", "great-expectations"} <= unconditional
    assert not unconditional & {"pyspark", "delta-spark"}
    assert any(r.startswith("pyspark") and 'extra == "spark"' in r for r in requires)
    cluster_reqs = (submit_main.parent / "requirements-cluster.txt").read_text()
    assert "boto3" in cluster_reqs and "pyspark" not in cluster_reqs
    assert "delta-spark" not in cluster_reqs
    # the EMR / spark-submit main file imports the CLI from the wheel alone
    proc = subprocess.run(
        [sys.executable, str(submit_main), "--help"],
        cwd=submit_main.parent, env=_wheel_env(site), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert all(c in proc.stdout for c in ("stream", "refresh-ownership", "dq"))


def _wheel_env(site: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "SPARK_HOME")}
    env.update(
        PYTHONPATH=str(site),  # the package from the installed wheel; deps from the venv
        PYSPARK_PYTHON=sys.executable,
        PYSPARK_DRIVER_PYTHON=sys.executable,
        DREDGE_JARS_DIR=str(ROOT / ".jars/spark"),
        SPARK_LOCAL_IP="127.0.0.1",
        AWS_ACCESS_KEY_ID="test",
        AWS_SECRET_ACCESS_KEY="test",
        AWS_DEFAULT_REGION="us-east-1",
    )
    return env
