# bench-lib.sh - what the bench-*.sh scripts share; source it after setting $root and $bench
# (the script's name for messages). It makes $tmp (a temp folder, removed on exit) and $pids
# (the script appends what it starts; on exit, failure or Ctrl-C they are stopped, then the
# PostgreSQL in $tmp/pg), and gives free_port, wait_http URL and wait_log FILE TEXT.

tmp=$(mktemp -d "/tmp/sr-$bench.XXXXXX")
chmod 755 "$tmp"
pids=()

bench_cleanup() {
  local rc=$? pid real
  trap - EXIT INT TERM
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  "$root/deploy/pg.sh" stop "$tmp/pg" >/dev/null 2>&1 || true
  if [ "$rc" -ne 0 ]; then
    echo "$bench: failed (rc=$rc); last log lines:" >&2
    tail -n 5 "$tmp"/*.log "$tmp"/pg/postgres.log >&2 2>/dev/null || true
  fi
  real=$(realpath -m "$tmp/pg")
  [ "$real" != "$tmp/pg" ] && rm -rf "$real"
  rm -rf "$tmp"
  exit "$rc"
}
trap bench_cleanup EXIT INT TERM

free_port() { "$root/deploy/free-port.sh"; }

# wait_http URL - 0 once URL answers 200, within 15 s
wait_http() {
  for _ in $(seq 1 150); do
    curl -fs -o /dev/null "$1" && return 0
    sleep 0.1
  done
  echo "$bench: $1 did not answer" >&2
  return 1
}

# wait_log FILE TEXT - 0 once TEXT is in FILE, within 15 s
wait_log() {
  for _ in $(seq 1 150); do
    grep -q "$2" "$1" && return 0
    sleep 0.1
  done
  echo "$bench: no $2 in $1" >&2
  return 1
}
