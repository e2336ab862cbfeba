#!/usr/bin/env bash
# A small single-machine Apache Druid, loopback only, from Maven Central jars (no Docker):
# ZooKeeper + coordinator (with the overlord folded in, and the Derby metadata store) +
# broker + historical + indexer. Idempotent: `up` while running is harmless; `down` stops the
# processes and wipes Druid's local state (metadata, segments, task dirs), like services.sh.
#   scripts/druid.sh fetch|up|down|status
# Ports (env): DREDGE_DRUID_{ZK,DERBY,COORDINATOR,BROKER,HISTORICAL,INDEXER}_PORT.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
RUN="${DREDGE_RUN_DIR:-$ROOT/.run}/druid"
JARS="${DREDGE_DRUID_JARS:-$ROOT/.jars/druid}"
POM="$ROOT/build/jvm/druid.xml"
JAVA="${DREDGE_DRUID_JAVA:-java}"
READY_TIMEOUT="${DREDGE_DRUID_READY_TIMEOUT:-300}"
declare -A PORT=(
  [zk]="${DREDGE_DRUID_ZK_PORT:-2181}"
  [derby]="${DREDGE_DRUID_DERBY_PORT:-1527}"
  [coordinator-overlord]="${DREDGE_DRUID_COORDINATOR_PORT:-8081}"
  [broker]="${DREDGE_DRUID_BROKER_PORT:-8082}"
  [historical]="${DREDGE_DRUID_HISTORICAL_PORT:-8083}"
  [indexer]="${DREDGE_DRUID_INDEXER_PORT:-8091}"
)
# Heaps sum to < 2 GiB (plus 3 x 96 MiB direct memory for processing buffers).
declare -A HEAP=(
  [zk]="-Xms64m -Xmx128m"
  [coordinator-overlord]="-Xms192m -Xmx384m"
  [broker]="-Xms192m -Xmx384m -XX:MaxDirectMemorySize=96m"
  [historical]="-Xms192m -Xmx384m -XX:MaxDirectMemorySize=96m"
  [indexer]="-Xms256m -Xmx512m -XX:MaxDirectMemorySize=96m"
)
DRUID_SERVICES=(coordinator-overlord broker historical indexer)
ALL=(zk "${DRUID_SERVICES[@]}")

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
alive() { [ -f "$RUN/$1.pid" ] && kill -0 "$(cat "$RUN/$1.pid")" 2>/dev/null; }
http_ok() { curl -fsS -m 5 -o /dev/null "$1" 2>/dev/null; }

fetch() { # resolve the jars from Maven Central once (stamped with the pom's hash)
  local want out
  want=$(sha256sum "$POM" | cut -c1-16)
  if [ -f "$JARS/.stamp" ] && [ "$(cat "$JARS/.stamp")" = "$want" ]; then return; fi
  echo "druid: resolving $(basename "$POM") from Maven Central into $JARS (once, ~200 MB)"
  rm -rf "$JARS"; mkdir -p "$JARS"
  mvn -q -B -Dstyle.color=never -f "$POM" -P druid-lib dependency:copy-dependencies -DincludeScope=runtime \
    -DoutputDirectory="$JARS/lib"
  out="$JARS/extensions/druid-kafka-indexing-service"
  mvn -q -B -Dstyle.color=never -f "$POM" -P druid-kafka dependency:copy-dependencies -DincludeScope=runtime \
    -DoutputDirectory="$out"
  for j in "$out"/*.jar; do  # a class must come from one jar only
    if [ -f "$JARS/lib/$(basename "$j")" ]; then rm -f "$j"; fi
  done
  echo "$want" >"$JARS/.stamp"
}

render_conf() { # services/druid/** -> $RUN/conf/** with ports and run dirs filled in
  local src="$ROOT/services/druid" f dest
  mkdir -p "$RUN/var/tmp" "$RUN/var/hadoop-dependencies" "$RUN/log"
  while IFS= read -r f; do
    dest="$RUN/conf/${f#"$src"/}"
    mkdir -p "$(dirname "$dest")"
    sed -e "s#@VAR@#$RUN/var#g" -e "s#@EXTENSIONS@#$JARS/extensions#g" \
      -e "s#@ZK_PORT@#${PORT[zk]}#g" -e "s#@DERBY_PORT@#${PORT[derby]}#g" \
      -e "s#@COORDINATOR_PORT@#${PORT[coordinator-overlord]}#g" \
      -e "s#@BROKER_PORT@#${PORT[broker]}#g" -e "s#@HISTORICAL_PORT@#${PORT[historical]}#g" \
      -e "s#@INDEXER_PORT@#${PORT[indexer]}#g" "$f" >"$dest"
  done < <(find "$src" -type f)
}

java_opts() { # name
  # Java 17 module openings Druid needs (as in Druid's bin/run-java); C1 only and serial GC:
  # start-up dominates on a 2-core shared machine and the data are small.
  echo "${HEAP[$1]} -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -XX:ReservedCodeCacheSize=64m" \
    "-Duser.timezone=UTC -Dfile.encoding=UTF-8 -Djava.io.tmpdir=$RUN/var/tmp" \
    "-Djava.util.logging.manager=org.apache.logging.log4j.jul.LogManager" \
    "-Dlog4j2.configurationFile=$RUN/conf/_common/log4j2.xml" \
    "-Dderby.stream.error.file=$RUN/log/derby.log" \
    "--add-exports=java.base/jdk.internal.misc=ALL-UNNAMED" \
    "--add-exports=java.base/jdk.internal.ref=ALL-UNNAMED" \
    "--add-opens=java.base/java.nio=ALL-UNNAMED --add-opens=java.base/sun.nio.ch=ALL-UNNAMED" \
    "--add-opens=java.base/jdk.internal.ref=ALL-UNNAMED --add-opens=java.base/java.io=ALL-UNNAMED" \
    "--add-opens=java.base/java.lang=ALL-UNNAMED" \
    "--add-opens=jdk.management/com.sun.management.internal=ALL-UNNAMED" \
    "${DREDGE_DRUID_JAVA_OPTS:-}"
}

check_free() { # name port...
  local name=$1; shift
  for p in "$@"; do
    if port_open "$p"; then
      echo "error: cannot start druid $name: port 127.0.0.1:$p is already taken by another process." >&2
      echo "       Stop it, or choose another port with the DREDGE_DRUID_*_PORT variables." >&2
      return 1
    fi
  done
}

launch() { # name
  local name=$1 cp main
  if alive "$name"; then return; fi
  if [ "$name" = zk ]; then
    check_free zk "${PORT[zk]}"
    cp="$JARS/lib/*"; main="org.apache.zookeeper.server.quorum.QuorumPeerMain $RUN/conf/zk/zoo.cfg"
  else
    if [ "$name" = coordinator-overlord ]; then check_free derby "${PORT[derby]}"; fi
    check_free "$name" "${PORT[$name]}"
    cp="$RUN/conf/_common:$RUN/conf/$name:$JARS/lib/*"
    main="org.apache.druid.cli.Main server ${name%-overlord}"
  fi
  # shellcheck disable=SC2046,SC2086  # word splitting of the option strings is intended
  (cd "$RUN/var" && exec nohup "$JAVA" $(java_opts "$name") -cp "$cp" $main) \
    >"$RUN/log/$name.log" 2>&1 &
  echo $! >"$RUN/$name.pid"
}

wait_for() { # name what check-command...
  local name=$1 what=$2; shift 2
  local deadline=$((SECONDS + READY_TIMEOUT))
  until "$@"; do
    if ! alive "$name"; then
      echo "error: druid $name exited during start-up; last log lines:" >&2
      tail -n 30 "$RUN/log/$name.log" >&2 || true
      return 1
    fi
    if [ $SECONDS -ge $deadline ]; then
      echo "error: druid $name: $what not reached after ${READY_TIMEOUT}s (log: $RUN/log/$name.log)" >&2
      return 1
    fi
    sleep 0.5
  done
}

zk_ok() { [ "$(exec 3<>"/dev/tcp/127.0.0.1/${PORT[zk]}" && printf ruok >&3 && timeout 2 cat <&3)" = imok ]; } 2>/dev/null
health() { http_ok "http://127.0.0.1:${PORT[$1]}/status/health"; }
overlord_leader() { http_ok "http://127.0.0.1:${PORT[coordinator-overlord]}/druid/indexer/v1/isLeader"; }
broker_ready() { http_ok "http://127.0.0.1:${PORT[broker]}/druid/broker/v1/readiness"; }
worker_registered() {
  curl -fsS -m 5 "http://127.0.0.1:${PORT[coordinator-overlord]}/druid/indexer/v1/workers" 2>/dev/null \
    | grep -q "\"host\":\"127.0.0.1:${PORT[indexer]}\""
}

up() {
  [ -f "$POM" ] || { echo "error: $POM missing" >&2; return 1; }
  fetch
  render_conf
  local start=$SECONDS
  launch zk
  wait_for zk "ZooKeeper ruok" zk_ok
  launch coordinator-overlord  # starts Derby first: the other services read metadata from it
  wait_for coordinator-overlord "overlord leadership" overlord_leader
  for s in broker historical indexer; do launch "$s"; done
  for s in broker historical indexer; do wait_for "$s" "/status/health" health "$s"; done
  wait_for broker "broker readiness" broker_ready
  wait_for indexer "indexer registered with the overlord" worker_registered
  echo "druid: ready in $((SECONDS - start))s; router-less: SQL at" \
    "http://127.0.0.1:${PORT[broker]}/druid/v2/sql, overlord at http://127.0.0.1:${PORT[coordinator-overlord]}"
}

stop() { # name
  if alive "$1"; then
    local pid; pid=$(cat "$RUN/$1.pid")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -9 "$pid" 2>/dev/null || true
    echo "druid $1: stopped"
  fi
  rm -f "$RUN/$1.pid"
}

down() {
  local s
  # the Druid services stop side by side (each waits only for itself), then ZooKeeper, which
  # they talk to while they stop
  for s in "${DRUID_SERVICES[@]}"; do stop "$s" & done
  wait
  stop zk
  rm -rf "$RUN/var" "$RUN/conf"
}

status() {
  local s rc=0
  for s in "${ALL[@]}"; do
    if alive "$s"; then
      echo "druid $s: running (pid $(cat "$RUN/$s.pid")) on 127.0.0.1:${PORT[$s]}"
    else
      echo "druid $s: stopped"; rc=3
    fi
  done
  return $rc
}

mkdir -p "$RUN"
case "${1:-status}" in
  fetch) fetch ;;
  up) up ;;
  down) down ;;
  status) status ;;
  *) echo "usage: $0 fetch|up|down|status" >&2; exit 2 ;;
esac
