#!/usr/bin/env bash
# Start/stop Dredge's local services, loopback only: kinesalite (Kinesis API) and a
# single-node Apache Kafka broker in KRaft mode. Idempotent: `up` while running is harmless.
#   scripts/services.sh up|down|status [kinesis|kafka]
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
RUN="${DREDGE_RUN_DIR:-$ROOT/.run}"
KINESIS_PORT="${DREDGE_KINESIS_PORT:-4567}"
KAFKA_PORT="${DREDGE_KAFKA_PORT:-9092}"
CONTROLLER_PORT="${DREDGE_KAFKA_CONTROLLER_PORT:-9093}"
READY_TIMEOUT="${DREDGE_READY_TIMEOUT:-90}"
mkdir -p "$RUN"

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
alive() { [ -f "$RUN/$1.pid" ] && kill -0 "$(cat "$RUN/$1.pid")" 2>/dev/null; }

wait_ready() { # name port
  local deadline=$((SECONDS + READY_TIMEOUT))
  until port_open "$2"; do
    if ! alive "$1"; then
      echo "error: $1 exited during start-up; last log lines:" >&2
      tail -n 20 "$RUN/$1.log" >&2 || true
      return 1
    fi
    if [ $SECONDS -ge $deadline ]; then
      echo "error: $1 not ready on 127.0.0.1:$2 after ${READY_TIMEOUT}s (log: $RUN/$1.log)" >&2
      return 1
    fi
    sleep 0.2
  done
}

check_free() { # name port...
  local name=$1; shift
  for p in "$@"; do
    if port_open "$p"; then
      echo "error: cannot start $name: port 127.0.0.1:$p is already taken by another process." >&2
      echo "       Stop it, or choose another port with the DREDGE_*_PORT variables." >&2
      return 1
    fi
  done
}

kinesis_up() {
  if alive kinesis; then echo "kinesis: already running on 127.0.0.1:$KINESIS_PORT"; return; fi
  [ -d "$ROOT/services/kinesis/node_modules/kinesalite" ] || { echo "error: kinesalite not installed; run 'make setup'" >&2; return 1; }
  check_free kinesis "$KINESIS_PORT"
  KINESIS_PORT="$KINESIS_PORT" nohup node "$ROOT/services/kinesis/server.js" >"$RUN/kinesis.log" 2>&1 &
  echo $! >"$RUN/kinesis.pid"
  wait_ready kinesis "$KINESIS_PORT"
  echo "kinesis: kinesalite ready on 127.0.0.1:$KINESIS_PORT"
}

kafka_up() {
  if alive kafka; then echo "kafka: already running on 127.0.0.1:$KAFKA_PORT"; return; fi
  [ -d "$ROOT/.jars/kafka" ] || { echo "error: Kafka jars missing; run 'make setup'" >&2; return 1; }
  check_free kafka "$KAFKA_PORT" "$CONTROLLER_PORT"
  local data="$RUN/kafka-data" props="$RUN/kafka.properties"
  local cp="$ROOT/.jars/kafka/*"
  sed -e "s#@KAFKA_PORT@#$KAFKA_PORT#g" -e "s#@CONTROLLER_PORT@#$CONTROLLER_PORT#g" \
      -e "s#@DATA_DIR@#$data#g" "$ROOT/services/kafka/server.properties.template" >"$props"
  local jopts=(-Xms256m -Xmx768m -XX:+UseG1GC -Djava.awt.headless=true
    "-Dlog4j2.configurationFile=$ROOT/services/kafka/log4j2.yaml")
  if [ ! -f "$data/meta.properties" ]; then
    rm -rf "$data"
    local cid
    cid=$(java "${jopts[@]}" -cp "$cp" kafka.tools.StorageTool random-uuid)
    java "${jopts[@]}" -cp "$cp" kafka.tools.StorageTool format -t "$cid" -c "$props" >"$RUN/kafka-format.log" 2>&1 \
      || { cat "$RUN/kafka-format.log" >&2; return 1; }
  fi
  nohup java "${jopts[@]}" -cp "$cp" kafka.Kafka "$props" >"$RUN/kafka.log" 2>&1 &
  echo $! >"$RUN/kafka.pid"
  wait_ready kafka "$KAFKA_PORT"
  echo "kafka: broker ready on 127.0.0.1:$KAFKA_PORT (KRaft)"
}

stop() { # name
  if alive "$1"; then
    local pid; pid=$(cat "$RUN/$1.pid")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    if kill -0 "$pid" 2>/dev/null; then
      kill -9 "$pid" 2>/dev/null || true
      echo "$1: did not stop within 30s of SIGTERM; killed (log: $RUN/$1.log)" >&2
    else
      echo "$1: stopped"
    fi
  fi
  rm -f "$RUN/$1.pid"
}

status() { # name port
  if alive "$1"; then echo "$1: running (pid $(cat "$RUN/$1.pid")) on 127.0.0.1:$2"; else echo "$1: stopped"; fi
}

cmd="${1:-status}"; which="${2:-all}"
case "$cmd" in
  up)
    if [[ $which == all || $which == kinesis ]]; then kinesis_up; fi
    if [[ $which == all || $which == kafka ]]; then kafka_up; fi
    ;;
  down)
    if [[ $which == all || $which == kafka ]]; then stop kafka; fi
    if [[ $which == all || $which == kinesis ]]; then stop kinesis; fi
    if [[ $which == all || $which == kafka ]]; then rm -rf "$RUN/kafka-data"; fi
    ;;
  status)
    status kinesis "$KINESIS_PORT"; status kafka "$KAFKA_PORT" ;;
  *) echo "usage: $0 up|down|status [kinesis|kafka|all]" >&2; exit 2 ;;
esac
