#!/usr/bin/env bash
# Build what a cluster needs to run Dredge, into dist/ (or $DIST_DIR):
#   dredge-<version>-py3-none-any.whl   the package, console script `dredge`
#   dredge_py_files.zip                 the same modules, for spark-submit --py-files
#   requirements-cluster.txt            runtime deps minus what the cluster ships (Spark, Delta)
#   dredge_submit.py                    the spark-submit main file (`dredge` subcommands)
#
# The cluster wheel declares pyspark and delta-spark as the optional extra `spark`, not as
# requirements: on EMR and Databricks the runtime provides them, and pip installing a second
# pyspark over the runtime's breaks the cluster. `pip install 'dredge[spark]'` gets them locally.
# The source tree is copied to a scratch folder first, so a build leaves no build/ or
# *.egg-info behind and never races another build in the working tree.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PY="${PYTHON:-$ROOT/.venv/bin/python}"
DIST="${DIST_DIR:-$ROOT/dist}"
STAGE="$(mktemp -d "${TMPDIR:-/tmp}/dredge-build.XXXXXX")"
trap 'rm -rf "$STAGE"' EXIT

mkdir -p "$DIST"
cp "$ROOT/pyproject.toml" "$ROOT/README.md" "$STAGE/"
(cd "$ROOT" && tar --exclude=__pycache__ --exclude='*.pyc' -cf - spark_jobs) | (cd "$STAGE" && tar -xf -)
"$PY" "$ROOT/scripts/cluster_pyproject.py" "$STAGE/pyproject.toml" "$DIST/requirements-cluster.txt"

if "$PY" -I -c "import build.__main__" 2>/dev/null; then
  "$PY" -m build --wheel --outdir "$DIST" "$STAGE" >"$STAGE/build.log" 2>&1 || { cat "$STAGE/build.log" >&2; exit 1; }
else # pip builds in an isolated env with the build-system requirements of pyproject.toml
  "$PY" -m pip wheel --quiet --no-deps --wheel-dir "$DIST" "$STAGE" >"$STAGE/build.log" 2>&1 ||
    { cat "$STAGE/build.log" >&2; exit 1; }
fi

(cd "$STAGE" && rm -f "$DIST/dredge_py_files.zip" && "$PY" -m zipfile -c "$DIST/dredge_py_files.zip" spark_jobs)
cp "$ROOT/deploy/dredge_submit.py" "$DIST/dredge_submit.py"
ls -1 "$DIST"/dredge-*.whl "$DIST/dredge_py_files.zip" "$DIST/requirements-cluster.txt" "$DIST/dredge_submit.py"
