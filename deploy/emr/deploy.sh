#!/usr/bin/env bash
# Deploy Dredge to Amazon EMR: build, render, upload to S3, then submit the jobs.
#
#   DREDGE_BUCKET=my-bucket DREDGE_KAFKA_BOOTSTRAP=b-1...:9096 \
#   DREDGE_KAFKA_SECRET_ID=arn:aws:secretsmanager:...:secret:AmazonMSK_dredge-... \
#   DREDGE_CLUSTER_ID=j-XXXXXXXX deploy/emr/deploy.sh                  # EMR on EC2: add-steps
#
#   DREDGE_TARGET=serverless DREDGE_SERVERLESS_APP_ID=00f... \
#   DREDGE_STREAM_ROLE_ARN=... DREDGE_REFRESH_ROLE_ARN=... DREDGE_DQ_ROLE_ARN=... \
#   deploy/emr/deploy.sh                                              # EMR Serverless
#
# DREDGE_JOBS=stream,refresh-ownership,dq (default: all three) picks the jobs to submit
# (e.g. DREDGE_JOBS=dq from a scheduler). DREDGE_DRY_RUN=1 renders and prints the aws
# commands without running them. See deploy/emr/render.py for every variable. Nothing here
# holds a credential: the aws CLI uses your profile/role; the jobs use their IAM roles
# (conf/iam/) and read the Kafka login from Secrets Manager at start.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
PY="${PYTHON:-$ROOT/.venv/bin/python}"
TARGET="${DREDGE_TARGET:-ec2}"
JOBS="${DREDGE_JOBS:-stream,refresh-ownership,dq}"
: "${DREDGE_BUCKET:?set DREDGE_BUCKET}"
PREFIX="${DREDGE_PREFIX:-dredge}"

run() { if [ "${DREDGE_DRY_RUN:-0}" = 1 ]; then echo "+ $*"; else "$@"; fi; }

"$ROOT/scripts/build.sh" >/dev/null
WHEEL="$(cd "$ROOT/dist" && ls -t dredge-*.whl | head -1)"
export DREDGE_WHEEL="$WHEEL"
export DREDGE_RELEASE="${DREDGE_RELEASE:-${WHEEL%%-py3*}-$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || date +%s)}"
OUT="$(mktemp -d "${TMPDIR:-/tmp}/dredge-deploy.XXXXXX")"
trap 'rm -rf "$OUT"' EXIT
PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" "$PY" "$ROOT/deploy/emr/render.py" "$OUT" >/dev/null
ART="s3://$DREDGE_BUCKET/$PREFIX/artifacts/$DREDGE_RELEASE"
echo "deploy: release $DREDGE_RELEASE -> $ART ($TARGET: $JOBS)"

run aws s3 cp --only-show-errors "$ROOT/dist/$WHEEL" "$ART/$WHEEL"
run aws s3 cp --only-show-errors "$ROOT/dist/dredge_submit.py" "$ART/dredge_submit.py"
run aws s3 cp --only-show-errors "$ROOT/dist/requirements-cluster.txt" "$ART/requirements-cluster.txt"
run aws s3 cp --only-show-errors "$ROOT/deploy/emr/bootstrap.sh" "$ART/bootstrap.sh"
run aws s3 cp --only-show-errors --recursive "$OUT/conf" "$ART/conf"

if [ "$TARGET" = serverless ]; then
  if [ -f "$ROOT/dist/dredge_venv.tar.gz" ]; then
    run aws s3 cp --only-show-errors "$ROOT/dist/dredge_venv.tar.gz" "$ART/dredge_venv.tar.gz"
  else
    echo "deploy: dist/dredge_venv.tar.gz missing: run deploy/emr/build_venv.sh first" >&2; exit 2
  fi
  for job in ${JOBS//,/ }; do
    run aws emr-serverless start-job-run --cli-input-json "file://$OUT/serverless/$job.json"
  done
else
  : "${DREDGE_CLUSTER_ID:?set DREDGE_CLUSTER_ID (or DREDGE_TARGET=serverless)}"
  # keep the selected steps, in file order (stream, refresh-ownership, dq)
  "$PY" - "$OUT/steps.json" "$JOBS" <<'PYEOF'
import json, sys
path, jobs = sys.argv[1], sys.argv[2].split(",")
steps = json.load(open(path))
keep = [s for s in steps if s["Name"].split()[1] in jobs]
json.dump(keep, open(path, "w"), indent=1)
PYEOF
  # the stream and the refresh loop run for ever: they need concurrent steps
  run aws emr modify-cluster --cluster-id "$DREDGE_CLUSTER_ID" --step-concurrency-level 4
  run aws emr add-steps --cluster-id "$DREDGE_CLUSTER_ID" --steps "file://$OUT/steps.json"
fi
if [ "${DREDGE_DRY_RUN:-0}" = 1 ]; then cat "$OUT"/conf/dredge.yaml; fi
