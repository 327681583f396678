#!/usr/bin/env bash
# bench-ingest.sh - `make bench-ingest`: 5 M room samples through sr-ingestd against one bare
# binary COPY of the same rows, on a throwaway PostgreSQL tuned alike for both runs.
#
#   tests/bench/bench-ingest.sh [BUILD]     (BUILD defaults to build; release binaries expected)
#
# Starts its own PostgreSQL (deploy/pg.sh, free port, temp folder), sr-busd and sr-ingestd, runs
# BUILD/tests/bench/bench_ingest (the load and the reference, see its header), and stops and
# removes everything on exit, failure or Ctrl-C. Every phase is bounded (SR_BENCH_TIMEOUT).
# Tunables (environment): SR_BENCH_INGESTD (instances sharing the load, 1), SR_BENCH_ROWS,
# SR_BENCH_CLIENTS, SR_BENCH_BATCH, SR_BENCH_WINDOW, SR_BENCH_TIMEOUT (see bench_ingest.c),
# SR_INGEST_FLUSH_ROWS, SR_INGEST_FLUSH_INTERVAL and SR_INGEST_WRITERS (passed to sr-ingestd), and
# SR_BENCH_INGESTD_TUNABLES, which becomes GLIBC_TUNABLES for sr-ingestd only (malloc experiments).
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-build}
[ "${build#/}" != "$build" ] || build=$root/$build
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
flush_rows=${SR_INGEST_FLUSH_ROWS:-5000}
flush_interval=${SR_INGEST_FLUSH_INTERVAL:-50ms}
writers=${SR_INGEST_WRITERS:-2}

# identical for the ingestd run and the reference COPY: durable commits, WAL on, no checkpoints
# or autovacuum in the middle of a timed phase (each phase starts after a CHECKPOINT)
pg_settings=(
  "max_wal_size=16GB"
  "min_wal_size=4GB"
  "checkpoint_timeout=30min"
  "wal_compression=off"
  "autovacuum=off"
)
shared_buffers=1GB

bench=bench-ingest
. "$root/tests/bench/bench-lib.sh"

for bin in sr-busd sr-ingestd; do
  [ -x "$build/bin/$bin" ] || { echo "bench-ingest: $build/bin/$bin missing (make all)" >&2; exit 1; }
done
[ -x "$build/tests/bench/bench_ingest" ] || { echo "bench-ingest: bench_ingest missing" >&2; exit 1; }

pg_port=$(free_port)
SR_PG_SHARED_BUFFERS=$shared_buffers "$root/deploy/pg.sh" start "$tmp/pg" "$pg_port" >/dev/null
psql=("$PGBIN/psql" -h 127.0.0.1 -p "$pg_port" -U postgres -d showrunner -qAtX -v ON_ERROR_STOP=1)
for s in "${pg_settings[@]}"; do
  "${psql[@]}" -c "ALTER SYSTEM SET ${s%%=*} = '${s#*=}'"
done
"${psql[@]}" -c "SELECT pg_reload_conf()" >/dev/null
sleep 0.2
db_url=$("$root/deploy/pg.sh" url "$pg_port")

bus_front=tcp://127.0.0.1:$(free_port)
bus_back=tcp://127.0.0.1:$(free_port)
bus_admin=$(free_port)
SR_BUSD_FRONTEND=$bus_front SR_BUSD_BACKEND=$bus_back SR_ADMIN_PORT=$bus_admin \
  "$build/bin/sr-busd" >"$tmp/busd.log" 2>&1 &
pids+=($!)
wait_http "http://127.0.0.1:$bus_admin/healthz"

# SR_BENCH_INGESTD instances (default 1), each one writer connection; the collectors spread
# batches over all of them. Rollup once an hour: its window scan is not the write path measured.
instances=${SR_BENCH_INGESTD:-1}
endpoints="" ingestd_pids="" admins=""
for i in $(seq 1 "$instances"); do
  collector=tcp://127.0.0.1:$(free_port)
  admin=$(free_port)
  SR_DB_URL=$db_url SR_BUS_PUB=$bus_front SR_ADMIN_PORT=$admin SR_INGEST_COLLECTOR_BIND=$collector SR_INGEST_RPC_BIND= \
    SR_INGEST_FLUSH_ROWS=$flush_rows SR_INGEST_FLUSH_INTERVAL=$flush_interval SR_INSTANCE=bench$i \
    SR_INGEST_WRITERS=$writers SR_INGEST_SPOOL_DIR=$tmp/spool \
    SR_INGEST_ROLLUP_INTERVAL=1h SR_INGEST_MAX_BATCH=16M SR_LOG_LEVEL=info \
    GLIBC_TUNABLES=${SR_BENCH_INGESTD_TUNABLES:-} "$build/bin/sr-ingestd" >"$tmp/ingestd$i.log" 2>&1 &
  pids+=($!)
  endpoints=${endpoints:+$endpoints,}$collector
  admins="$admins $admin"
  ingestd_pids=${ingestd_pids:+$ingestd_pids,}$!
  wait_http "http://127.0.0.1:$admin/healthz"
  # one at a time: concurrent start-ups race in metrics.ensure_partitions ("already exists")
  wait_log "$tmp/ingestd$i.log" event=ingest_listening
done

for s in fsync synchronous_commit wal_level shared_buffers wal_buffers max_wal_size min_wal_size \
  checkpoint_timeout wal_compression autovacuum full_page_writes; do
  echo "pg_setting $s=$("${psql[@]}" -c "SHOW $s")"
done
echo "ingestd_setting instances=$instances SR_INGEST_FLUSH_ROWS=$flush_rows" \
  "SR_INGEST_FLUSH_INTERVAL=$flush_interval SR_INGEST_WRITERS=$writers SR_INGEST_ROLLUP_INTERVAL=1h" \
  "GLIBC_TUNABLES=${SR_BENCH_INGESTD_TUNABLES:-}"

# in the background so a signal runs the trap at once; timeout passes a TERM on to bench_ingest
timeout 600 "$build/tests/bench/bench_ingest" "$db_url" "$endpoints" "$ingestd_pids" &
bench=$!
pids=("$bench" "${pids[@]}")
wait "$bench"
# where ingestd's time went: the flush transactions (PostgreSQL) against the whole run
for a in $admins; do
  curl -fs "http://127.0.0.1:$a/metrics" |
    awk '/^sr_ingest_flush_seconds_(sum|count)/ { printf "%s=%s ", $1, $2 } END { print "" }' |
    sed 's/^/ingestd_flushes /'
done
