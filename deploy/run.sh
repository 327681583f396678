#!/usr/bin/env bash
# run.sh - the embedded suite on one machine: `make run`, `make stop`, `make status`.
#
#   deploy/run.sh start    start PostgreSQL (unless SR_DB_URL is set), busd and every daemon in
#                          build/bin, wait for each /healthz, print what runs where
#   deploy/run.sh stop     SIGTERM every daemon (they drain), then stop PostgreSQL
#   deploy/run.sh status   what runs, with health
#
# Environment (give status and stop the same values as start):
#   SR_DB_URL       use this database instead of the embedded one
#   SR_PORT_OFFSET  added to every port (PostgreSQL, admin, bus), to run a second copy beside the
#                   first; that copy keeps its files in var/offset-N unless SR_VAR_DIR says else
#   SR_VAR_DIR      pg/, log/ and run/ (default ./var)
#   SR_PG_PORT      the embedded PostgreSQL's port before the offset (default 7432)
#   SR_BIN_DIR      the daemons (default build/bin)
# run.sh sets each daemon's SR_ADMIN_PORT and the bus endpoints itself; every other SR_* setting
# in the environment reaches the daemons as it is.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
offset=${SR_PORT_OFFSET:-0}
case "$offset" in
  '' | *[!0-9]*) echo "run: SR_PORT_OFFSET must be a whole number, not '$offset'" >&2; exit 2 ;;
esac
if [ "$offset" -eq 0 ]; then var=${SR_VAR_DIR:-$root/var}; else var=${SR_VAR_DIR:-$root/var/offset-$offset}; fi
bin=${SR_BIN_DIR:-$root/build/bin}
pg_port=$(( ${SR_PG_PORT:-7432} + offset ))
external_db=${SR_DB_URL:+yes}
mkdir -p "$var/log" "$var/run"

# daemons in start order: busd, the platform simulator ingestd polls, then the rest
daemons() {
  local n
  for n in busd simd; do [ -x "$bin/sr-$n" ] && echo "$n"; done
  for b in "$bin"/sr-*; do
    n=${b##*/sr-}
    case $n in busd | simd | collect) continue ;; esac # collect: a one-shot command, not a daemon
    [ -x "$b" ] && echo "$n"
  done
  return 0
}

# admin_port NAME - the daemon's SR_ADMIN_PORT default, as its config table says, plus offset
admin_port() {
  local p
  p=$("$bin/sr-$1" --config-markdown | awk -F'|' '$2 ~ /SR_ADMIN_PORT/ {gsub(/[ `]/, "", $4); print $4}')
  echo $((p + offset))
}

running() { # running NAME - pid file names a live sr-NAME
  local f=$var/run/$1.pid pid
  [ -f "$f" ] || return 1
  pid=$(cat "$f")
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && grep -q "sr-$1" "/proc/$pid/cmdline" 2>/dev/null
}

# wait_healthy NAME PORT SECONDS - 0 once the daemon answers /healthz with 200; 1 when it exited
# (its status in $exit_status) or did not get healthy in time
wait_healthy() {
  local pid i
  pid=$(cat "$var/run/$1.pid")
  exit_status=
  for i in $(seq 1 $(($3 * 10))); do
    if ! kill -0 "$pid" 2>/dev/null; then
      wait "$pid" 2>/dev/null && exit_status=0 || exit_status=$?
      return 1
    fi
    curl -fsS -o /dev/null --max-time 1 "http://127.0.0.1:$2/healthz" 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}

port_busy() { [ -n "$(ss -Htln "sport = :$1" 2>/dev/null)" ]; }

start() {
  if [ -z "$(daemons)" ]; then echo "run: no daemons in $bin; run make first" >&2; exit 1; fi
  if [ -z "$external_db" ]; then
    "$root/deploy/pg.sh" start "$var/pg" "$pg_port"
    export SR_DB_URL=$("$root/deploy/pg.sh" url "$pg_port")
  fi
  export SR_BUSD_FRONTEND=${SR_BUSD_FRONTEND:-tcp://127.0.0.1:$((7601 + offset))}
  export SR_BUSD_BACKEND=${SR_BUSD_BACKEND:-tcp://127.0.0.1:$((7602 + offset))}
  export SR_BUS_PUB=${SR_BUS_PUB:-tcp://127.0.0.1:$((7601 + offset))}
  export SR_BUS_SUB=${SR_BUS_SUB:-tcp://127.0.0.1:$((7602 + offset))}
  export SR_SIMD_PORT=${SR_SIMD_PORT:-$((7700 + offset))}
  export SR_INGEST_COLLECTOR_BIND=${SR_INGEST_COLLECTOR_BIND:-tcp://127.0.0.1:$((7620 + offset))}
  export SR_INGEST_PUSH_BIND=${SR_INGEST_PUSH_BIND:-127.0.0.1:$((7630 + offset))}
  export SR_INGEST_SPOOL_DIR=${SR_INGEST_SPOOL_DIR:-$var/spool}
  export SR_INGEST_RPC_BIND=${SR_INGEST_RPC_BIND:-tcp://127.0.0.1:$((7640 + offset))}
  export SR_GATEWAY_METRICS_RPC=${SR_GATEWAY_METRICS_RPC:-tcp://127.0.0.1:$((7640 + offset))}
  export SR_TASK_RPC_BIND=${SR_TASK_RPC_BIND:-tcp://127.0.0.1:$((7661 + offset))}
  export SR_GATEWAY_TASKS_RPC=${SR_GATEWAY_TASKS_RPC:-tcp://127.0.0.1:$((7661 + offset))}
  export SR_GATEWAY_BIND=${SR_GATEWAY_BIND:-127.0.0.1:$((7680 + offset))}
  if [ -x "$bin/sr-simd" ]; then # ingestd polls every room the simulator plays
    export SR_INGEST_PLATFORM_URL=${SR_INGEST_PLATFORM_URL:-http://127.0.0.1:$SR_SIMD_PORT}
    export SR_INGEST_POLL_ROOMS=${SR_INGEST_POLL_ROOMS:-discover}
  fi
  local n port failed=0
  for n in $(daemons); do
    port=$(admin_port "$n")
    if running "$n"; then
      echo "run: sr-$n already running (pid $(cat "$var/run/$n.pid"))"
      continue
    fi
    if port_busy "$port"; then
      echo "run: sr-$n not started: another process listens on its admin port $port" >&2
      failed=1
      continue
    fi
    SR_ADMIN_PORT=$port nohup "$bin/sr-$n" >>"$var/log/$n.log" 2>&1 </dev/null &
    echo $! >"$var/run/$n.pid"
    if ! wait_healthy "$n" "$port" 30; then
      if [ -n "$exit_status" ]; then
        echo "run: sr-$n exited with status $exit_status; last lines of $var/log/$n.log:" >&2
      else
        echo "run: sr-$n did not become healthy in 30 s; last lines of $var/log/$n.log:" >&2
      fi
      tail -n 5 "$var/log/$n.log" >&2
      failed=1
    fi
  done
  echo
  status
  if [ $failed -ne 0 ]; then
    echo "run: some daemons did not start; what did start is still running ('make stop' ends it)" >&2
    exit 1
  fi
}

stop() {
  local n pid i
  for f in "$var"/run/*.pid; do
    [ -f "$f" ] || continue
    n=$(basename "$f" .pid)
    if running "$n"; then
      pid=$(cat "$f")
      kill -TERM "$pid"
      for i in $(seq 1 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      if kill -0 "$pid" 2>/dev/null; then
        echo "run: sr-$n did not stop in 15 s; killing it" >&2
        kill -KILL "$pid" 2>/dev/null || true
      fi
      echo "run: stopped sr-$n"
    fi
    rm -f "$f"
  done
  if [ -z "$external_db" ] && "$root/deploy/pg.sh" status "$var/pg"; then
    "$root/deploy/pg.sh" stop "$var/pg"
    echo "run: stopped PostgreSQL"
  fi
}

status() {
  local n port health
  if [ -n "$external_db" ]; then
    echo "PostgreSQL  external (SR_DB_URL)"
  elif "$root/deploy/pg.sh" status "$var/pg"; then
    echo "PostgreSQL  running   $("$root/deploy/pg.sh" url "$pg_port")   data $var/pg"
  else
    echo "PostgreSQL  stopped"
  fi
  for n in $(daemons); do
    port=$(admin_port "$n")
    if running "$n"; then
      health=$(curl -s --max-time 2 "http://127.0.0.1:$port/healthz" || echo unreachable)
      printf 'sr-%-8s running   pid %-7s http://127.0.0.1:%s/healthz  /metrics  %s\n' \
        "$n" "$(cat "$var/run/$n.pid")" "$port" "$health"
    else
      printf 'sr-%-8s stopped\n' "$n"
    fi
  done
  if [ -x "$bin/sr-ingestd" ]; then
    echo "collectors  sr-collect --endpoints tcp://127.0.0.1:$((7620 + offset)) (proto/collector.proto)"
    echo "pushes      POST http://127.0.0.1:$((7630 + offset))/douyin/push (Douyin live interactions)"
  fi
  if [ -x "$bin/sr-gatewayd" ]; then
    echo "api         http://127.0.0.1:$((7680 + offset))/api/v1"
    echo "first admin SR_DB_URL=${SR_DB_URL:-$("$root/deploy/pg.sh" url "$pg_port")} $bin/sr-gatewayd bootstrap-admin NAME  (password on stdin)"
  fi
  echo "bus         publishers -> tcp://127.0.0.1:$((7601 + offset))   subscribers -> tcp://127.0.0.1:$((7602 + offset))"
  if [ -x "$bin/sr-simd" ]; then
    echo "platforms   simulated by sr-simd: http://127.0.0.1:${SR_SIMD_PORT:-$((7700 + offset))}/rooms"
  fi
  echo "logs        $var/log/"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: deploy/run.sh start|stop|status" >&2; exit 2 ;;
esac
