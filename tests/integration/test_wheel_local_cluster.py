"""The built wheel runs under ``spark-submit`` in ``local-cluster`` mode.

``local-cluster[2,1,1024]`` starts a standalone master, two workers and two executor JVMs, so
every task - the ``dredge-kinesis`` reader and the decode/parse transforms - runs in a separate
process that unpickles it: nothing can lean on driver state. The package comes only from the
wheel (``pip install --no-deps --target``, plus ``--py-files``); the repository is on no path.
The submitted job wires the job's own pieces (``source_options``, ``read_kinesis`` - which
registers ``dredge-kinesis`` itself - and ``enrich_flows.kinesis_stage``) to a Delta table with
``availableNow``, against kinesalite.
"""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import boto3
import pytest

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]
ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
KINESIS = "http://127.0.0.1:4567"
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
from spark_jobs import config
from spark_jobs.jobs.enrich_flows import kinesis_stage
from spark_jobs.session import build_session
from spark_jobs.sources.kinesis.adapters import read_kinesis, source_options

cfg = config.load(sys.argv[1])
out = Path(sys.argv[2])
spark = build_session(cfg.spark)
checkpoint = cfg.paths.resolve("checkpoints") + "/it-wheel"
records = read_kinesis(spark, source_options(cfg.source, checkpoint + "-source-meta"), "python")
parsed = kinesis_stage(cfg.source.record_format, cfg.source.log_format)(records).parsed
table = cfg.paths.resolve("enriched")
query = (
    parsed.writeStream.format("delta").option("checkpointLocation", checkpoint)
    .trigger(availableNow=True).start(table)
)
query.awaitTermination()

def where(batches):
    import os, pandas as pd, spark_jobs
    pid = os.getpid()  # walk up to the JVM that started this Python worker
    while pid > 1 and b"java" not in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\\0")[0]:
        pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    jvm = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    for _ in batches:
        yield pd.DataFrame({"module": [spark_jobs.__file__], "jvm_pid": [pid],
                            "is_executor": ["CoarseGrainedExecutorBackend" in jvm]})

cols = ["srcaddr", "dstaddr", "srcaddr_key", "bytes", "origin", "flow_id", "quarantine_reason"]
result = {
    "master": spark.conf.get("spark.master"),
    "driver_module": spark_jobs.__file__,
    "rows": [r.asDict() for r in spark.read.format("delta").load(table).select(*cols).collect()],
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
    overlay = {
        "extends": str(ROOT / "conf/local.yaml"),
        "spark": {"master": MASTER, "shuffle_partitions": 2},
        "source": {"stream_names": [stream], "endpoint_url": KINESIS},
        "paths": {"root": str(tmp_path / "data")},
    }
    conf.write_text(json.dumps(overlay))  # JSON is YAML
    return conf


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


def test_wheel_reads_kinesis_and_writes_delta_on_separate_executors(
    tmp_path, stream_name, wheel_site
):
    wheel, site, submit_main = wheel_site
    assert submit_main.exists()  # the EMR main file ships next to the wheel
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER)
    out = tmp_path / "result.json"
    jars = ",".join(sorted(str(p) for p in (ROOT / ".jars/spark").glob("*.jar")))
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
    cmd = [
        str(VENV_BIN / "spark-submit"),
        "--master", MASTER,
        "--conf", "spark.driver.host=127.0.0.1",
        "--conf", "spark.ui.enabled=false",
        "--jars", jars,
        "--py-files", str(wheel),
        str(driver), str(_conf(tmp_path, stream_name)), str(out),
    ]  # fmt: skip
    proc = _submit(cmd, tmp_path, env)
    (tmp_path / "submit.stderr").write_text(proc.stderr)
    (tmp_path / "submit.stdout").write_text(proc.stdout)
    assert proc.returncode == 0, proc.stderr[-4000:]
    result = json.loads(out.read_text())

    assert result["master"] == MASTER
    repo = str(ROOT / "spark_jobs")
    modules = [result["driver_module"]] + [t["module"] for t in result["tasks"]]
    assert not any(m.startswith(repo) for m in modules), modules
    assert all(t["is_executor"] for t in result["tasks"]), result["tasks"]
    assert len({t["jvm_pid"] for t in result["tasks"]}) == 2  # both executor JVMs ran tasks
    rows = {(r["srcaddr"], r["dstaddr"], r["bytes"]): r for r in result["rows"]}
    assert set(rows) == {
        ("192.0.2.10", "192.0.2.20", 1000),
        ("2001:db8::20", "198.51.100.9", 300),
        ("192.0.2.10", "192.0.2.20", 1),
    }
    assert rows[("192.0.2.10", "192.0.2.20", 1)]["quarantine_reason"] == "port_range"
    good = [rows[("192.0.2.10", "192.0.2.20", 1000)], rows[("2001:db8::20", "198.51.100.9", 300)]]
    assert [r["quarantine_reason"] for r in good] == [None, None]
    assert good[0]["srcaddr_key"] == "00000000000000000000ffffc000020a"
    assert good[1]["srcaddr_key"] == "20010db8000000000000000000000020"
    assert all(r["origin"].startswith(f"kinesis:{stream_name}/shardId-") for r in result["rows"])
    assert len({r["flow_id"] for r in result["rows"]}) == 3
