#!/usr/bin/env bash
# EMR on EC2 bootstrap action: Python 3.11 and Dredge's runtime dependencies on every node.
# The Dredge code itself is not installed here: each step ships its wheel with --py-files,
# so a new release needs no new cluster. Spark, Delta and pyspark come from the EMR release.
#
#   aws emr create-cluster ... \
#     --bootstrap-actions Path=s3://<bucket>/dredge/artifacts/<release>/bootstrap.sh,\
#       Args=[s3://<bucket>/dredge/artifacts/<release>/requirements-cluster.txt]
#
# Requirements file: dist/requirements-cluster.txt from scripts/build.sh (the wheel's
# dependencies minus pyspark/delta-spark). Needs outbound HTTPS to PyPI (or set
# PIP_INDEX_URL in the file's first line via `--index-url`, for a private mirror).
set -euo pipefail
REQS_S3="${1:?usage: bootstrap.sh s3://.../requirements-cluster.txt [python]}"
PY="${2:-python3.11}"
if ! command -v "$PY" >/dev/null; then
  sudo dnf install -y -q "$PY" "$PY-pip" || sudo yum install -y -q "$PY" "$PY-pip"
fi
tmp="$(mktemp)"
aws s3 cp --only-show-errors "$REQS_S3" "$tmp"
sudo "$PY" -m pip install --quiet --no-cache-dir -r "$tmp"
"$PY" -c "import yaml, boto3, pyarrow, pandas, confluent_kafka; print('dredge deps ok')"
