#!/usr/bin/env bash
# One-time, idempotent set-up on a fresh machine: Python venv with pinned packages, JVM jars
# from Maven Central into .jars/ (Spark: Delta + Kafka connector; broker: Apache Kafka),
# and the Kinesis emulator (kinesalite) from npm. Each step is skipped when already done.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
PY="${PYTHON:-python3}"
VENV="$ROOT/.venv"
JARS="$ROOT/.jars"
stamp_ok() { [ -f "$1" ] && [ "$(cat "$1")" = "$2" ]; }
hash_of() { cat "$@" | sha256sum | cut -c1-16; }

# 1. Python
want=$(hash_of pyproject.toml constraints.txt)
if ! stamp_ok "$VENV/.dredge-stamp" "$want"; then
  echo "setup: Python venv (.venv) with pinned packages"
  [ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
  "$VENV/bin/pip" install -q --upgrade pip
  "$VENV/bin/pip" install -q -c constraints.txt -e ".[dev]"
  echo "$want" >"$VENV/.dredge-stamp"
else
  echo "setup: Python venv up to date"
fi

# 2. JVM jars (Maven Central, at setup only)
fetch_jars() { # pom outdir
  local pom=$1 out=$2 want
  want=$(hash_of "$pom")
  if stamp_ok "$out/.stamp" "$want"; then echo "setup: $out up to date"; return; fi
  echo "setup: resolving $(basename "$pom") from Maven Central into $out"
  rm -rf "$out"; mkdir -p "$out"
  mvn -q -B -f "$pom" dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$out"
  echo "$want" >"$out/.stamp"
}
fetch_jars build/jvm/spark-deps.xml "$JARS/spark"
fetch_jars build/jvm/kafka-broker.xml "$JARS/kafka"
# Spark already ships many of the connector's transitive jars (Hadoop client, Jackson, Scala,
# Parquet, ...): keep only the ones pyspark lacks, so no class exists twice on the classpath.
SPARK_JARS_DIR=$("$VENV/bin/python" -c 'import pyspark, os; print(os.path.join(os.path.dirname(pyspark.__file__), "jars"))')
artifact() { basename "$1" .jar | sed -E 's/[-_][0-9][0-9.]*([-.][A-Za-z0-9.]+)*$//'; }
declare -A have=()
for j in "$SPARK_JARS_DIR"/*.jar; do have[$(artifact "$j")]=1; done
for j in "$JARS/spark"/*.jar; do
  a=$(artifact "$j")
  if [ -n "${have[$a]:-}" ]; then rm -f "$j"; fi
done

# 2b. The local file system without a process per file (build/jvm/local-fs, see
# spark_jobs/session.py), compiled against the Hadoop that pyspark ships. Optional: without
# it, local JVMs use Hadoop's own.
LOCAL_FS="$JARS/spark/local-fs"
want=$( { java -version 2>&1; ls "$SPARK_JARS_DIR"/hadoop-client-api-*.jar; cat build/jvm/local-fs/dredge/hadoop/*.java; } | sha256sum | cut -c1-16)
if stamp_ok "$LOCAL_FS/.stamp" "$want" && [ -f "$LOCAL_FS/dredge-local-fs.jar" ]; then
  echo "setup: local file system up to date"
else
  echo "setup: compiling the local file system (build/jvm/local-fs)"
  rm -rf "$LOCAL_FS"; mkdir -p "$LOCAL_FS/classes"
  # the jar appears whole or not at all: a session uses it when it is there
  if javac --release 17 -Xlint:all,-path -cp "$SPARK_JARS_DIR/*" -d "$LOCAL_FS/classes" \
      build/jvm/local-fs/dredge/hadoop/*.java >"$JARS/local-fs.log" 2>&1 &&
    (cd "$LOCAL_FS/classes" && "$VENV/bin/python" -m zipfile -c ../jar.tmp dredge) &&
    mv "$LOCAL_FS/jar.tmp" "$LOCAL_FS/dredge-local-fs.jar"; then
    echo "$want" >"$LOCAL_FS/.stamp"
  else
    rm -f "$LOCAL_FS/dredge-local-fs.jar"
    echo "setup: local file system skipped (see $JARS/local-fs.log); local JVMs use Hadoop's"
  fi
  rm -rf "$LOCAL_FS/classes"
fi

# 3. The local driver's class-data archive (scripts/jvm_archive.py): shorter cold starts. It
# belongs to one JVM and classpath, so it is recorded again when either changes. Optional: a
# failure leaves it out and drivers load their classes from the jars.
ARCHIVE="$JARS/spark/driver-classes.jsa"
want=$( { java -version 2>&1; ls "$SPARK_JARS_DIR"/*.jar "$JARS"/spark/*.jar; cat "$LOCAL_FS/dredge-local-fs.jar" 2>/dev/null || true; cat scripts/jvm_archive.py; } | sha256sum | cut -c1-16)
if [ -f "$ARCHIVE" ] && stamp_ok "$ARCHIVE.stamp" "$want"; then
  echo "setup: JVM class archive up to date"
else
  echo "setup: recording the local driver's JVM class archive (about a minute)"
  rm -f "$ARCHIVE" "$ARCHIVE.stamp"
  if "$VENV/bin/python" scripts/jvm_archive.py "$ARCHIVE" >"$JARS/jvm_archive.log" 2>&1 && [ -f "$ARCHIVE" ]; then
    echo "$want" >"$ARCHIVE.stamp"
  else
    rm -f "$ARCHIVE"
    echo "setup: JVM class archive skipped (see $JARS/jvm_archive.log); drivers start without it"
  fi
fi

# 4. Bytecode in the pyspark zips Spark's own Python processes import from (workers, Python
# data source planners, a streaming source runner per query): they load it instead of
# compiling pyspark from source at every start. Optional, like the archive.
if ! "$VENV/bin/python" scripts/pyspark_bytecode.py; then
  echo "setup: pyspark bytecode skipped; Spark's Python processes compile pyspark at start"
fi

# 5. Kinesis emulator (npm)
if [ ! -d services/kinesis/node_modules/kinesalite ]; then
  echo "setup: kinesalite from npm"
  (cd services/kinesis && npm install --no-audit --no-fund --silent)
else
  echo "setup: kinesalite up to date"
fi
echo "setup: done"
