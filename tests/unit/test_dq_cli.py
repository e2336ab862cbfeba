"""``dredge dq`` wiring without Spark: the threshold comes from the config unless given, the
GX result JSON is always written, and the exit code follows the validation."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from _moto import moto_client, moto_server

from spark_jobs.jobs import dq
from spark_jobs.quality.runner import Validation
from spark_jobs.sinks.reports import write_report

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def seen(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, Any]:
    calls: dict[str, Any] = {"success": True}
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(dq, "build_session", lambda cfg: "spark")
    monkeypatch.setattr(dq, "read_table", lambda spark, path, where: ("df", path, where))

    def fake_validate(table: str, df: Any, **kw: Any) -> Validation:
        calls.update(table=table, df=df, **kw)
        ok = calls["success"]
        return Validation(f"dredge_{table}", ok, (), {"success": ok}, 0.1)

    monkeypatch.setattr(dq, "validate_table", fake_validate)
    return calls


def _conf(tmp_path: Path, share: float) -> str:
    conf = tmp_path / "dq.yaml"
    conf.write_text(f"extends: {ROOT / 'conf' / 'local.yaml'}\nquality:\n  min_attributed_share: {share}\n")  # fmt: skip
    return str(conf)


def test_threshold_defaults_to_the_configured_share(seen: dict[str, Any], tmp_path: Path) -> None:
    argv = ["--table", "enriched", "--path", "t", "--conf", _conf(tmp_path, 0.8)]
    assert dq.main(argv) == 0
    assert seen["min_attributed_share"] == 0.8
    assert seen["df"] == ("df", "t", None)
    assert json.loads((tmp_path / "reports" / "dq" / "enriched.json").read_text()) == {
        "success": True
    }


def test_flag_overrides_the_configured_share(seen: dict[str, Any], tmp_path: Path) -> None:
    argv = ["--table", "enriched", "--path", "t", "--min-attributed-share", "0.3",
            "--where", "event_hour = 3", "--conf", _conf(tmp_path, 0.8)]  # fmt: skip
    assert dq.main(argv) == 0
    assert seen["min_attributed_share"] == 0.3
    assert seen["df"] == ("df", "t", "event_hour = 3")


def test_failure_exits_one_and_still_writes_the_json(seen: dict[str, Any], tmp_path: Path) -> None:
    seen["success"] = False
    out = tmp_path / "x" / "r.json"
    argv = ["--table", "ownership", "--path", "t", "--result-json", str(out),
            "--conf", _conf(tmp_path, 0.5)]  # fmt: skip
    assert dq.main(argv) == 1
    assert json.loads(out.read_text()) == {"success": False}


@pytest.mark.parametrize("argv", [
    ["--table", "enriched", "--min-attributed-share", "1.5"],
    ["--table", "ownership", "--ground-truth", "g"],
    ["--table", "bogus"],
])  # fmt: skip
def test_usage_errors_exit_two(seen: dict[str, Any], argv: list[str]) -> None:
    with pytest.raises(SystemExit) as err:
        dq.main(argv)
    assert err.value.code == 2


def test_result_json_to_s3(
    seen: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--result-json s3://...`` (the EMR dq step) lands in the bucket through boto3; a
    ``Path`` write would have made a local folder named ``s3:``."""
    seen["success"] = False
    with moto_server() as url:
        moto_client("s3", url).create_bucket(Bucket="dq-bucket")
        monkeypatch.setenv("AWS_ENDPOINT_URL_S3", url)
        target = "s3://dq-bucket/dredge/dq-results/enriched.json"
        argv = ["--table", "enriched", "--path", "t", "--result-json", target,
                "--conf", _conf(tmp_path, 0.5)]  # fmt: skip
        assert dq.main(argv) == 1
        obj = moto_client("s3", url).get_object(
            Bucket="dq-bucket", Key="dredge/dq-results/enriched.json"
        )
        assert json.loads(obj["Body"].read()) == {"success": False}
        assert obj["ContentType"] == "application/json"
    assert not (tmp_path / "s3:").exists()


@pytest.mark.parametrize("uri", ["s3://dq-bucket", "s3://dq-bucket/", "s3:///key.json"])
def test_result_json_s3_uri_needs_a_bucket_and_key(uri: str) -> None:
    with pytest.raises(ValueError, match="expected s3://bucket/key"):
        write_report(uri, "{}", s3_client=object())
