#!/usr/bin/env bash
# EMR Serverless: pack Python 3.11 + Dredge's runtime dependencies into dist/dredge_venv.tar.gz
# (used with --conf spark.archives=...#environment, see serverless/*.json). A venv-pack
# archive reuses the interpreter of the image it runs on, so it fits only a release whose
# Python is 3.11; otherwise use the custom image of serverless/Dockerfile.
# The archive must be built on the platform the jobs run on (Amazon Linux 2023, x86_64 or
# arm64 to match the application's architecture), hence the container:
#
#   scripts/build.sh && deploy/emr/build_venv.sh            # needs docker
#
# The Dredge wheel is not in the archive: each job run ships it with --py-files, so the archive
# changes only when the dependencies do.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
ARCH="${DREDGE_ARCH:-linux/amd64}"   # linux/arm64 for a Graviton application
[ -f "$ROOT/dist/requirements-cluster.txt" ] || { echo "run scripts/build.sh first" >&2; exit 2; }
docker run --rm --platform "$ARCH" -v "$ROOT/dist:/dist" public.ecr.aws/amazonlinux/amazonlinux:2023 \
  /bin/bash -c '
    set -euo pipefail
    dnf install -y -q python3.11 python3.11-pip tar gzip >/dev/null
    python3.11 -m venv /opt/venv
    /opt/venv/bin/pip install -q --upgrade pip
    /opt/venv/bin/pip install -q venv-pack -r /dist/requirements-cluster.txt
    /opt/venv/bin/venv-pack -q -f -p /opt/venv -o /dist/dredge_venv.tar.gz
  '
ls -l "$ROOT/dist/dredge_venv.tar.gz"
