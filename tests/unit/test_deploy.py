"""Deployment files: config overlays, IAM policies, the Databricks bundle and the EMR jobs."""

from __future__ import annotations

import fnmatch
import importlib.util
import json
import sys
import tomllib
from pathlib import Path
from types import ModuleType

import pytest
import yaml

from spark_jobs import config
from spark_jobs.cli import COMMANDS
from spark_jobs.sinks.kafka_auth import KafkaSecretError, kafka_client_options

ROOT = Path(__file__).resolve().parents[2]
IAM = ROOT / "conf/iam"
EMR = ROOT / "deploy/emr"
BUNDLE = ROOT / "deploy/databricks/databricks.yml"
SERVERLESS = sorted((EMR / "serverless").glob("*.json"))
DEPLOYED_COMMANDS = {"stream", "refresh-ownership", "dq"}

KINESIS_READ = {
    "kinesis:DescribeStreamSummary",
    "kinesis:ListShards",
    "kinesis:GetShardIterator",
    "kinesis:GetRecords",
}
S3_RW = {"s3:ListBucket", "s3:GetObject", "s3:PutObject", "s3:DeleteObject"}
EC2_DESCRIBE = {
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeInstances",
    "ec2:DescribeVpcs",
    "ec2:DescribeSubnets",
}
EXPECTED_ACTIONS = {
    "stream-job.json": KINESIS_READ | S3_RW | {"secretsmanager:GetSecretValue", "kms:Decrypt"},
    "stream-job-msk-iam.json": {
        "kafka-cluster:Connect",
        "kafka-cluster:DescribeCluster",
        "kafka-cluster:WriteDataIdempotently",
        "kafka-cluster:CreateTopic",
        "kafka-cluster:DescribeTopic",
        "kafka-cluster:WriteData",
        "kafka-cluster:DescribeTransactionalId",
        "kafka-cluster:AlterTransactionalId",
        "kafka-cluster:DescribeGroup",
        "kafka-cluster:AlterGroup",
    },
    "refresh-job.json": {"sts:AssumeRole"} | EC2_DESCRIBE | S3_RW,
    "inventory-reader-role-policy.json": EC2_DESCRIBE,
    "inventory-reader-trust-policy.json": {"sts:AssumeRole"},
    "dq-job.json": {"s3:ListBucket", "s3:GetObject", "s3:PutObject"},
}


def _actions(doc: dict) -> set[str]:
    out: set[str] = set()
    for stmt in doc["Statement"]:
        assert stmt["Effect"] == "Allow"
        assert "NotAction" not in stmt and "NotResource" not in stmt
        acts = stmt["Action"]
        out |= {acts} if isinstance(acts, str) else set(acts)
    return out


def _load_module(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", ["emr", "databricks"])
def test_platform_overlays_load_and_validate(name):
    cfg = config.load(ROOT / f"conf/{name}.yaml")
    assert cfg.spark.platform == name
    assert cfg.paths.resolve("enriched").startswith("s3://")
    assert cfg.kafka.options["security.protocol"] == "SASL_SSL"
    assert cfg.kafka.options["sasl.mechanism"] == "SCRAM-SHA-512"
    assert not {k for k in cfg.kafka.options if "password" in k or "username" in k}


def test_databricks_overlay_uses_native_kinesis_and_a_volume_for_checkpoints():
    cfg = config.load(ROOT / "conf/databricks.yaml")
    assert cfg.source.kind == "databricks"
    assert cfg.paths.resolve("checkpoints").startswith("/Volumes/")


@pytest.mark.parametrize("name", sorted(EXPECTED_ACTIONS))
def test_iam_documents_grant_exactly_what_the_job_needs(name):
    doc = json.loads((IAM / name).read_text())
    assert doc["Version"] == "2012-10-17"
    assert _actions(doc) == EXPECTED_ACTIONS[name]
    assert not any("*" in a for a in _actions(doc))


def test_every_iam_document_is_covered_by_the_test():
    assert {p.name for p in IAM.glob("*.json")} == set(EXPECTED_ACTIONS)


def test_only_describe_calls_and_the_trust_policy_use_wildcard_resources():
    for path in IAM.glob("*.json"):
        for stmt in json.loads(path.read_text())["Statement"]:
            if stmt.get("Resource") == "*":  # EC2 Describe* has no resource-level permissions
                assert set(_actions({"Statement": [stmt]})) <= EC2_DESCRIBE, path.name


def test_trust_policy_trusts_only_the_refresh_job_role():
    doc = json.loads((IAM / "inventory-reader-trust-policy.json").read_text())
    (stmt,) = doc["Statement"]
    assert stmt["Principal"] == {"AWS": "arn:aws:iam::111122223333:role/dredge-refresh-job"}


def _wheel_task_commands(bundle: dict) -> list[str]:
    commands = []
    for job in bundle["resources"]["jobs"].values():
        for task in job["tasks"]:
            wheel = task["python_wheel_task"]
            assert wheel["package_name"] == "dredge"
            assert wheel["entry_point"] in _console_scripts()
            assert task["libraries"] == [{"whl": "../../dist/*.whl"}]
            commands.append(wheel["parameters"][0])
    return commands


def _console_scripts() -> dict[str, str]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]


def test_bundle_parses_and_runs_existing_cli_commands():
    bundle = yaml.safe_load(BUNDLE.read_text())
    assert set(bundle["targets"]) == {"dev", "prod"}
    assert bundle["targets"]["prod"]["mode"] == "production"
    commands = _wheel_task_commands(bundle)
    assert set(commands) == DEPLOYED_COMMANDS
    assert set(commands) <= set(COMMANDS)
    jobs = bundle["resources"]["jobs"]
    assert jobs["dredge_stream"]["continuous"]["pause_status"] == "UNPAUSED"
    for job in jobs.values():  # every job reads the Databricks overlay (native kinesis source)
        params = job["tasks"][0]["python_wheel_task"]["parameters"]
        assert params[params.index("--conf") + 1] == "${workspace.file_path}/conf/databricks.yaml"
    assert "schedule" in jobs["dredge_refresh_ownership"] and "schedule" in jobs["dredge_dq"]


def test_bundle_stream_cluster_sets_the_static_spark_settings():
    """Databricks starts the session before the job's code runs, so the session factory's
    static settings must come from the cluster."""
    from spark_jobs.session import STATIC_CONF

    bundle = yaml.safe_load(BUNDLE.read_text())
    job = bundle["resources"]["jobs"]["dredge_stream"]
    (cluster,) = job["job_clusters"]
    assert STATIC_CONF.items() <= cluster["new_cluster"]["spark_conf"].items()


def test_bundle_stream_executors_compile_huge_methods():
    """The executors' JVM options are the cluster's: the bundle gives them the factory's."""
    from spark_jobs.session import JVM_OPTIONS

    bundle = yaml.safe_load(BUNDLE.read_text())
    (cluster,) = bundle["resources"]["jobs"]["dredge_stream"]["job_clusters"]
    options = cluster["new_cluster"]["spark_conf"]["spark.executor.extraJavaOptions"].split()
    assert set(JVM_OPTIONS.split()) <= set(options)


def test_bundle_keeps_kafka_secrets_in_a_secret_scope():
    text = BUNDLE.read_text()
    env = yaml.safe_load(text)["resources"]["jobs"]["dredge_stream"]["job_clusters"][0]
    env_vars = env["new_cluster"]["spark_env_vars"]
    assert all(v.startswith("{{secrets/") for v in env_vars.values())
    assert "password:" not in text.replace("DREDGE_KAFKA_SASL_PASSWORD:", "")


def _submitted_command(args: list[str]) -> str:
    main = next(i for i, a in enumerate(args) if a.endswith("dredge_submit.py"))
    return args[main + 1]


def test_emr_steps_parse_and_run_existing_cli_commands():
    steps = json.loads((EMR / "steps.json").read_text())
    assert all(s["Jar"] == "command-runner.jar" and s["Args"][0] == "spark-submit" for s in steps)
    commands = [_submitted_command(s["Args"]) for s in steps]
    assert commands == ["stream", "refresh-ownership", "dq"]
    assert set(commands) <= set(COMMANDS)


def test_serverless_has_one_job_run_per_deployed_command():
    assert {p.stem for p in SERVERLESS} == DEPLOYED_COMMANDS


@pytest.mark.parametrize("path", SERVERLESS, ids=lambda p: p.stem)
def test_serverless_job_runs_parse_and_run_existing_cli_commands(path):
    run = json.loads(path.read_text())
    submit = run["jobDriver"]["sparkSubmit"]
    assert submit["entryPoint"].endswith("/dredge_submit.py")
    assert submit["entryPointArguments"][0] == path.stem
    assert path.stem in COMMANDS
    assert run["mode"] == ("STREAMING" if path.stem == "stream" else "BATCH")


def test_emr_render_fills_every_placeholder_and_validates_the_overlay(tmp_path):
    render = _load_module(EMR / "render.py")
    env = {
        "DREDGE_BUCKET": "acme-flows",
        "DREDGE_RELEASE": "0.1.0-abc1234",
        "DREDGE_WHEEL": "dredge-0.1.0-py3-none-any.whl",
        "DREDGE_KAFKA_BOOTSTRAP": "b-1.msk:9096",
        "DREDGE_STREAMS": "flows-a,flows-b",
        "DREDGE_INVENTORY_ACCOUNTS": "444455556666",
    }
    render.render(tmp_path, env)
    cfg = config.load(tmp_path / "conf/dredge.yaml")
    assert cfg.spark.platform == "emr"
    assert cfg.source.stream_names == ("flows-a", "flows-b")
    assert cfg.paths.resolve("enriched") == "s3://acme-flows/dredge/data/enriched"
    assert cfg.kafka.bootstrap_servers == "b-1.msk:9096"
    steps_text = (tmp_path / "steps.json").read_text()
    assert "${" not in steps_text
    stream_args = json.loads(steps_text)[0]["Args"]
    art = "s3://acme-flows/dredge/artifacts/0.1.0-abc1234"
    assert f"{art}/dredge-0.1.0-py3-none-any.whl" in stream_args
    refresh = json.loads(steps_text)[1]["Args"]
    assert refresh[refresh.index("--accounts") + 1] == "444455556666"
    for job in ("stream", "refresh-ownership", "dq"):
        assert "${" not in (tmp_path / f"serverless/{job}.json").read_text()


def _parse_deployed(args: list[str]) -> None:
    """Parse a deployed command line with the subcommand's own argument parser (no Spark
    session): a flag the CLI does not know fails here, not on the cluster."""
    from spark_jobs.jobs import dq, enrich_flows, refresh_ownership

    command, rest = args[0], args[1:]
    if command == "stream":
        enrich_flows._parser("dredge stream").parse_args(rest)
    elif command == "refresh-ownership":
        from spark_jobs.config import RefreshConfig  # the deployed line alone must read something

        refresh_ownership.options_for(refresh_ownership.parse_args(rest), RefreshConfig())
    elif command == "dq":
        dq._parser().parse_args(rest)
    else:
        pytest.fail(f"not a deployed command: {command}")


def test_every_deployed_command_line_parses(tmp_path):
    bundle = yaml.safe_load(BUNDLE.read_text())
    lines = [
        task["python_wheel_task"]["parameters"]
        for job in bundle["resources"]["jobs"].values()
        for task in job["tasks"]
    ]
    render = _load_module(EMR / "render.py")
    env = {"DREDGE_BUCKET": "b", "DREDGE_RELEASE": "r", "DREDGE_WHEEL": "w.whl"}
    render.render(tmp_path, {**env, "DREDGE_KAFKA_BOOTSTRAP": "b-1.msk:9096"})
    for step in json.loads((tmp_path / "steps.json").read_text()):
        args = step["Args"]
        lines.append(
            args[next(i for i, a in enumerate(args) if a.endswith("dredge_submit.py")) + 1 :]
        )
    for job in DEPLOYED_COMMANDS:
        run = json.loads((tmp_path / f"serverless/{job}.json").read_text())
        lines.append(run["jobDriver"]["sparkSubmit"]["entryPointArguments"])
    assert len(lines) == 3 * len(DEPLOYED_COMMANDS)
    for line in lines:
        _parse_deployed(line)


def test_emr_render_requires_the_bucket(tmp_path):
    render = _load_module(EMR / "render.py")
    with pytest.raises(render.RenderError, match="DREDGE_BUCKET"):
        render.render(tmp_path, {"DREDGE_RELEASE": "r", "DREDGE_WHEEL": "w.whl"})


def test_kafka_login_comes_from_the_environment():
    opts = {"security.protocol": "SASL_SSL", "sasl.mechanism": "SCRAM-SHA-512"}
    env = {"DREDGE_KAFKA_SASL_USERNAME": "dredge", "DREDGE_KAFKA_SASL_PASSWORD": "s3cret"}
    out = kafka_client_options(opts, env)
    assert out == {**opts, "sasl.username": "dredge", "sasl.password": "s3cret"}
    assert kafka_client_options(opts, {}) == opts


def test_kafka_login_from_secrets_manager_wins_over_plain_variables():
    seen = []

    def fetch(secret_id: str) -> str:
        seen.append(secret_id)
        return json.dumps({"username": "msk-user", "password": "msk-pass"})

    env = {"DREDGE_KAFKA_SECRET_ID": "AmazonMSK_dredge", "DREDGE_KAFKA_SASL_USERNAME": "x"}
    out = kafka_client_options({}, env, fetch)
    assert (out["sasl.username"], out["sasl.password"], seen) == (
        "msk-user",
        "msk-pass",
        ["AmazonMSK_dredge"],
    )


@pytest.mark.parametrize(
    ("options", "env", "fetched", "match"),
    [
        ({"sasl.password": "x"}, {}, "", "must not be in config files"),
        ({"SASL.USERNAME": "x"}, {}, "", "must not be in config files"),
        ({}, {"DREDGE_KAFKA_SASL_USERNAME": "u"}, "", "both"),
        ({}, {"DREDGE_KAFKA_SECRET_ID": "s"}, "not json", "username and password"),
        ({}, {"DREDGE_KAFKA_SECRET_ID": "s"}, '{"username": "u"}', "username and password"),
    ],
)
def test_kafka_secret_errors(options, env, fetched, match):
    with pytest.raises(KafkaSecretError, match=match):
        kafka_client_options(options, env, lambda _: fetched)


@pytest.mark.parametrize("name", ["emr", "databricks"])
def test_platform_kafka_security_reaches_the_sink_with_the_login_from_the_environment(
    name, monkeypatch
):
    from spark_jobs.jobs.enrich_flows import targets_for

    monkeypatch.delenv("DREDGE_KAFKA_SECRET_ID", raising=False)
    monkeypatch.setenv("DREDGE_KAFKA_SASL_USERNAME", "dredge")
    monkeypatch.setenv("DREDGE_KAFKA_SASL_PASSWORD", "s3cret")
    cfg = config.load(ROOT / f"conf/{name}.yaml")
    targets = targets_for(cfg, "dredge-enrich")
    assert targets.kafka_bootstrap == cfg.kafka.bootstrap_servers
    assert targets.kafka_options == {
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "SCRAM-SHA-512",
        "ssl.ca.location": "probe",
        "sasl.username": "dredge",
        "sasl.password": "s3cret",
    }


def _result_json(args: list[str]) -> str:
    return args[args.index("--result-json") + 1]


def test_dq_jobs_write_their_result_where_the_dq_policy_allows(tmp_path):
    """The EMR dq step and Serverless run pass an S3 result path that dq-job.json's PutObject
    covers (the bucket/prefix of the policy's example); Databricks writes to its UC volume."""
    render = _load_module(EMR / "render.py")
    env = {"DREDGE_BUCKET": "my-dredge-bucket", "DREDGE_RELEASE": "r", "DREDGE_WHEEL": "w.whl",
           "DREDGE_KAFKA_BOOTSTRAP": "b-1.msk:9096"}  # fmt: skip
    render.render(tmp_path, env)
    step = json.loads((tmp_path / "steps.json").read_text())[2]["Args"]
    run = json.loads((tmp_path / "serverless/dq.json").read_text())
    targets = {
        _result_json(step),
        _result_json(run["jobDriver"]["sparkSubmit"]["entryPointArguments"]),
    }
    assert targets == {"s3://my-dredge-bucket/dredge/dq-results/enriched.json"}
    policy = json.loads((IAM / "dq-job.json").read_text())
    puts = [
        res
        for stmt in policy["Statement"]
        if "s3:PutObject" in _actions({"Statement": [stmt]})
        for res in ([stmt["Resource"]] if isinstance(stmt["Resource"], str) else stmt["Resource"])
    ]
    arn = "arn:aws:s3:::" + targets.pop().removeprefix("s3://")
    assert any(fnmatch.fnmatchcase(arn, res) for res in puts)
    bundle = yaml.safe_load(BUNDLE.read_text())
    params = bundle["resources"]["jobs"]["dredge_dq"]["tasks"][0]["python_wheel_task"]["parameters"]
    assert _result_json(params).startswith("/Volumes/${var.catalog}/${var.schema}/${var.volume}/")


def test_refresh_job_assumes_the_reader_role_only_inside_its_organization():
    doc = json.loads((IAM / "refresh-job.json").read_text())
    (stmt,) = [s for s in doc["Statement"] if s["Action"] == "sts:AssumeRole"]
    assert stmt["Resource"] == "arn:aws:iam::*:role/dredge-inventory-reader"
    assert stmt["Condition"] == {"StringEquals": {"aws:ResourceOrgID": "o-exampleorgid"}}
