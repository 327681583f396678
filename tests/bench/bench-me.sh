#!/usr/bin/env bash
# bench-me.sh - `make bench-me`: wrk against an authenticated GET /api/v1/me on sr-gatewayd.
#
#   tests/bench/bench-me.sh [BUILD]     (BUILD defaults to build; release binaries expected)
#
# Starts its own PostgreSQL (deploy/pg.sh, free port, temp folder), sr-busd and sr-gatewayd with
# the per-token rate limit off (one token makes every request), creates the admin, logs in and
# runs wrk with 64 connections for 10 s (SR_BENCH_CONNECTIONS, SR_BENCH_SECONDS). Prints the
# gateway settings and one line: endpoint=/api/v1/me rps=N p50_ms=A p99_ms=B non_2xx=C
# Everything it started is stopped and removed on exit, failure or Ctrl-C.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-build}
[ "${build#/}" != "$build" ] || build=$root/$build
conns=${SR_BENCH_CONNECTIONS:-64}
secs=${SR_BENCH_SECONDS:-10}
threads=${SR_GATEWAY_THREADS:-4}
access_log=${SR_GATEWAY_ACCESS_LOG:-on}
bench=bench-me
. "$root/tests/bench/bench-lib.sh"

command -v wrk >/dev/null || { echo "bench-me: wrk missing (make deps)" >&2; exit 1; }
pg_port=$(free_port)
"$root/deploy/pg.sh" start "$tmp/pg" "$pg_port" >/dev/null
export SR_DB_URL=$("$root/deploy/pg.sh" url "$pg_port")
front=tcp://127.0.0.1:$(free_port) back=tcp://127.0.0.1:$(free_port) bus_admin=$(free_port)
SR_BUSD_FRONTEND=$front SR_BUSD_BACKEND=$back SR_ADMIN_PORT=$bus_admin "$build/bin/sr-busd" \
  >"$tmp/busd.log" 2>&1 &
pids+=($!)
wait_http "http://127.0.0.1:$bus_admin/healthz"
echo 'bench-password-1' | "$build/bin/sr-gatewayd" bootstrap-admin bench >/dev/null 2>"$tmp/bootstrap.log"
port=$(free_port) admin=$(free_port)
SR_BUS_PUB=$front SR_BUS_SUB=$back SR_ADMIN_PORT=$admin SR_GATEWAY_BIND=127.0.0.1:$port \
  SR_GATEWAY_RATE=0 SR_GATEWAY_THREADS=$threads SR_GATEWAY_ACCESS_LOG=$access_log \
  "$build/bin/sr-gatewayd" >"$tmp/gatewayd.log" 2>&1 &
pids+=($!)
wait_http "http://127.0.0.1:$admin/healthz"
api=http://127.0.0.1:$port/api/v1
token=$(curl -fsS -X POST "$api/auth/login" -H 'Content-Type: application/json' \
  -d '{"user":"bench","password":"bench-password-1"}' | sed -E 's/.*"token":"([^"]+)".*/\1/')
curl -fsS -o /dev/null "$api/me" -H "Authorization: Bearer $token"
echo "gateway_setting SR_GATEWAY_THREADS=$threads SR_GATEWAY_ACCESS_LOG=$access_log" \
  "SR_GATEWAY_TOKEN_CACHE=5s SR_GATEWAY_RATE=0 wrk_threads=2 connections=$conns seconds=$secs"
wrk -t2 -c"$conns" -d"${secs}s" --latency -H "Authorization: Bearer $token" "$api/me" >"$tmp/wrk.out"
awk '
  /Requests\/sec:/ { rps = $2 }
  /^ +50%/ { p50 = $2 } /^ +99%/ { p99 = $2 }
  /Non-2xx/ { non2xx = $NF }
  function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /s$/) return v * 1000; return v }
  END { printf "endpoint=/api/v1/me rps=%.0f p50_ms=%.2f p99_ms=%.2f non_2xx=%d\n", rps, ms(p50), ms(p99), non2xx }
' "$tmp/wrk.out"
