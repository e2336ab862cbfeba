"""Render the EMR deployment files from environment variables (used by deploy.sh).

    python deploy/emr/render.py OUT_DIR

Writes into OUT_DIR:
  conf/base.yaml, conf/emr.yaml   copied from the project
  conf/dredge.yaml                the per-deployment overlay (extends: emr.yaml), validated with
                                  ``spark_jobs.config.load`` before anything is uploaded
  steps.json                      ``aws emr add-steps --steps file://...`` (EMR on EC2)
  serverless/<job>.json           ``aws emr-serverless start-job-run --cli-input-json file://...``

Variables (only non-secret values; credentials come from the caller's AWS profile/role and the
jobs' roles; the Kafka login from the Secrets Manager secret named by DREDGE_KAFKA_SECRET_ID):
  DREDGE_BUCKET (required), DREDGE_PREFIX=dredge, DREDGE_RELEASE (required: artifact folder),
  DREDGE_WHEEL (required: wheel file name), DREDGE_REGION=us-east-1,
  DREDGE_STREAMS=dredge-flows, DREDGE_KAFKA_BOOTSTRAP (required unless
  DREDGE_KAFKA_ENABLED=false), DREDGE_KAFKA_TOPIC=dredge.flows.enriched,
  DREDGE_KAFKA_SECRET_ID, DREDGE_INVENTORY_REGIONS=$DREDGE_REGION, DREDGE_INVENTORY_ACCOUNTS
  (comma list; empty = the job role's own account), DREDGE_REFRESH_EVERY=5m,
  DREDGE_DQ_WHERE, DREDGE_PYTHON=python3.11, DREDGE_SERVERLESS_APP_ID and
  DREDGE_{STREAM,REFRESH,DQ}_ROLE_ARN (Serverless only).
The dq job writes its GX result to s3://$DREDGE_BUCKET/$DREDGE_PREFIX/dq-results/enriched.json
(the prefix conf/iam/dq-job.json lets it write; each run replaces the previous result).
"""

from __future__ import annotations

import json
import os
import shutil
import string
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
TEMPLATES = {
    "steps.json": HERE / "steps.json",
    "serverless/stream.json": HERE / "serverless/stream.json",
    "serverless/refresh-ownership.json": HERE / "serverless/refresh-ownership.json",
    "serverless/dq.json": HERE / "serverless/dq.json",
}
DEFAULT_DQ_WHERE = "event_date >= date_sub(current_date(), 1)"


class RenderError(ValueError):
    """A required variable is missing, or a rendered file is not valid."""


def _need(env: Mapping[str, str], name: str) -> str:
    value = env.get(name, "")
    if not value:
        raise RenderError(f"{name} is required")
    return value


def template_values(env: Mapping[str, str]) -> dict[str, str]:
    """The ``${NAME}`` values of the JSON templates."""
    bucket, prefix = _need(env, "DREDGE_BUCKET"), env.get("DREDGE_PREFIX", "dredge").strip("/")
    base = f"s3://{bucket}/{prefix}"
    region = env.get("DREDGE_REGION", "us-east-1")
    serverless = {
        "SERVERLESS_APP_ID": env.get("DREDGE_SERVERLESS_APP_ID", "REPLACE-APPLICATION-ID"),
        "STREAM_ROLE_ARN": env.get("DREDGE_STREAM_ROLE_ARN", "REPLACE-STREAM-ROLE-ARN"),
        "REFRESH_ROLE_ARN": env.get("DREDGE_REFRESH_ROLE_ARN", "REPLACE-REFRESH-ROLE-ARN"),
        "DQ_ROLE_ARN": env.get("DREDGE_DQ_ROLE_ARN", "REPLACE-DQ-ROLE-ARN"),
    }
    return {
        "ARTIFACTS": f"{base}/artifacts/{_need(env, 'DREDGE_RELEASE')}",
        "LOGS": f"{base}/logs",
        "DQ_RESULTS": f"{base}/dq-results",
        "WHEEL": _need(env, "DREDGE_WHEEL"),
        "PYTHON": env.get("DREDGE_PYTHON", "python3.11"),
        "KAFKA_SECRET_ID": env.get("DREDGE_KAFKA_SECRET_ID", ""),
        "INVENTORY_REGIONS": env.get("DREDGE_INVENTORY_REGIONS", region),
        "INVENTORY_ACCOUNTS": env.get("DREDGE_INVENTORY_ACCOUNTS", ""),
        "REFRESH_EVERY": env.get("DREDGE_REFRESH_EVERY", "5m"),
        "DQ_WHERE": env.get("DREDGE_DQ_WHERE", DEFAULT_DQ_WHERE),
        **serverless,
    }


def overlay(env: Mapping[str, str]) -> dict[str, Any]:
    """The per-deployment config overlay (``conf/dredge.yaml``)."""
    bucket, prefix = _need(env, "DREDGE_BUCKET"), env.get("DREDGE_PREFIX", "dredge").strip("/")
    kafka_on = env.get("DREDGE_KAFKA_ENABLED", "true").lower() != "false"
    streams = [s.strip() for s in env.get("DREDGE_STREAMS", "dredge-flows").split(",")]
    kafka: dict[str, Any] = {"enabled": kafka_on}
    if kafka_on:
        kafka["bootstrap_servers"] = _need(env, "DREDGE_KAFKA_BOOTSTRAP")
        kafka["topic"] = env.get("DREDGE_KAFKA_TOPIC", "dredge.flows.enriched")
    return {
        "extends": "emr.yaml",
        "source": {
            "stream_names": [s for s in streams if s],
            "region": env.get("DREDGE_REGION", "us-east-1"),
        },
        "paths": {"root": f"s3://{bucket}/{prefix}/data"},
        "kafka": kafka,
    }


def render_text(template: str, values: Mapping[str, str], name: str) -> str:
    """Substitute ``${NAME}`` and check that the result is JSON."""
    try:
        text = string.Template(template).substitute(values)
    except KeyError as err:
        raise RenderError(f"{name}: no value for ${{{err.args[0]}}}") from err
    try:
        json.loads(text)
    except json.JSONDecodeError as err:
        raise RenderError(f"{name}: rendered file is not JSON ({err})") from err
    return text


def render(out: Path, env: Mapping[str, str]) -> list[Path]:
    """Write every deployment file into ``out``; returns the written paths."""
    from spark_jobs import config  # validates the overlay exactly as the job will

    values = template_values(env)
    (out / "conf").mkdir(parents=True, exist_ok=True)
    written = []
    for name in ("base.yaml", "emr.yaml"):
        written.append(Path(shutil.copy(ROOT / "conf" / name, out / "conf" / name)))
    conf = out / "conf/dredge.yaml"
    conf.write_text(yaml.safe_dump(overlay(env), sort_keys=False))
    config.load(conf)
    written.append(conf)
    for name, template in TEMPLATES.items():
        target = out / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(render_text(template.read_text(), values, name))
        written.append(target)
    return written


if __name__ == "__main__":
    for path in render(Path(sys.argv[1]), os.environ):
        print(path)
