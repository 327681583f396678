#!/usr/bin/env bash
# bench-gateway.sh - `make bench-gateway`: wrk against sr-gatewayd (with sr-taskd behind it) and
# against a reference server in Fastify + node-postgres (tests/bench/reference), on the same
# data, for GET /api/v1/projects/{id} and GET /api/v1/projects/{id}/tasks?limit=50.
#
#   tests/bench/bench-gateway.sh [BUILD]     (BUILD defaults to build; release binaries expected)
#
# Starts its own PostgreSQL (deploy/pg.sh, free port, temp folder), sr-busd, sr-taskd (which
# creates the tasks schema) and seeds it in SQL: SR_BENCH_PROJECTS projects (100000) of
# SR_BENCH_TASKS_PER_PROJECT tasks (50), a checklist item on every fifth task and a few
# dependencies. Then creates the admin, logs in, starts sr-gatewayd with the per-token rate limit
# off and the reference (npm ci in the temp folder, node server.js) checking the same bearer
# token. Both must give the same JSON for one project and one task page (jq -S) before wrk runs:
# per endpoint a 2 s warm-up of each, then wrk -t2 with 64 connections for 10 s
# (SR_BENCH_CONNECTIONS, SR_BENCH_SECONDS) on the gateway, then on the reference, each request
# for a random project (random-project.lua). A non-2xx answer fails the run. Prints the seeding
# progress, the settings and per endpoint one line:
#   endpoint=E gateway_rps=N reference_rps=M ratio=N/M gateway_p99_ms=P reference_p99_ms=Q
# Tunables (environment): SR_BENCH_PROJECTS, SR_BENCH_TASKS_PER_PROJECT, SR_BENCH_CONNECTIONS,
# SR_BENCH_SECONDS, SR_BENCH_REFERENCE_POOL (the reference's pg.Pool size, 16), and
# SR_GATEWAY_THREADS (4, the default) and SR_GATEWAY_ACCESS_LOG (on) passed to sr-gatewayd.
# Everything it started is stopped and removed on exit, failure or Ctrl-C.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-build}
[ "${build#/}" != "$build" ] || build=$root/$build
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
conns=${SR_BENCH_CONNECTIONS:-64}
secs=${SR_BENCH_SECONDS:-10}
projects=${SR_BENCH_PROJECTS:-100000}
per=${SR_BENCH_TASKS_PER_PROJECT:-50}
threads=${SR_GATEWAY_THREADS:-4}
access_log=${SR_GATEWAY_ACCESS_LOG:-on}
pool=${SR_BENCH_REFERENCE_POOL:-16}
wrk_threads=2
limit=50
shared_buffers=2GB
# a read benchmark: no checkpoint or autovacuum in the middle of the seeding or a timed run
pg_settings=(
  "max_wal_size=16GB"
  "checkpoint_timeout=30min"
  "autovacuum=off"
)
bench=bench-gateway
. "$root/tests/bench/bench-lib.sh"

for tool in wrk node npm jq curl; do
  command -v "$tool" >/dev/null || { echo "bench-gateway: $tool missing (make deps; jq: apt-get install jq)" >&2; exit 1; }
done
for bin in sr-busd sr-taskd sr-gatewayd; do
  [ -x "$build/bin/$bin" ] || { echo "bench-gateway: $build/bin/$bin missing (make all)" >&2; exit 1; }
done
case "$projects$per" in *[!0-9]*) echo "bench-gateway: SR_BENCH_PROJECTS and SR_BENCH_TASKS_PER_PROJECT must be numbers" >&2; exit 2 ;; esac
[ "$projects" -ge 1 ] && [ "$per" -ge 1 ] || { echo "bench-gateway: SR_BENCH_PROJECTS and SR_BENCH_TASKS_PER_PROJECT must be at least 1" >&2; exit 2; }

# --- PostgreSQL, sr-busd, sr-taskd --------------------------------------------------------------
pg_port=$(free_port)
SR_PG_SHARED_BUFFERS=$shared_buffers "$root/deploy/pg.sh" start "$tmp/pg" "$pg_port" >/dev/null
export SR_DB_URL=$("$root/deploy/pg.sh" url "$pg_port")
psql=("$PGBIN/psql" "$SR_DB_URL" -qAtX -v ON_ERROR_STOP=1)
for s in "${pg_settings[@]}"; do
  "${psql[@]}" -c "ALTER SYSTEM SET ${s%%=*} = '${s#*=}'"
done
"${psql[@]}" -c "SELECT pg_reload_conf()" >/dev/null

front=tcp://127.0.0.1:$(free_port) back=tcp://127.0.0.1:$(free_port) bus_admin=$(free_port)
SR_BUSD_FRONTEND=$front SR_BUSD_BACKEND=$back SR_ADMIN_PORT=$bus_admin "$build/bin/sr-busd" \
  >"$tmp/busd.log" 2>&1 &
pids+=($!)
wait_http "http://127.0.0.1:$bus_admin/healthz"

task_rpc=tcp://127.0.0.1:$(free_port) task_admin=$(free_port)
SR_BUS_PUB=$front SR_ADMIN_PORT=$task_admin SR_TASK_RPC_BIND=$task_rpc "$build/bin/sr-taskd" \
  >"$tmp/taskd.log" 2>&1 &
pids+=($!)
wait_http "http://127.0.0.1:$task_admin/healthz"
for _ in $(seq 1 150); do
  [ "$("${psql[@]}" -c "SELECT to_regclass('tasks.task_deps') IS NOT NULL")" = t ] && break
  sleep 0.1
done

# --- seeding ------------------------------------------------------------------------------------
# Explicit ids (project p's tasks are (p-1)*per+1 .. p*per), the foreign-key triggers off while
# loading (session_replication_role), dates from three days ahead so that no reminder is due.
seed_start=$(date +%s.%N)
seconds() { awk -v a="$seed_start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }
seed() { "${psql[@]}" -v projects="$projects" -v per="$per" >/dev/null; }
seed_prelude="SET session_replication_role = replica; SET synchronous_commit = off;
SET maintenance_work_mem = '512MB';"

seed <<SQL
$seed_prelude
INSERT INTO tasks.projects (id, name, brand, region, platforms, starts_at, ends_at, owner_id,
    gmv_target_fen, reach_target, follower_target, budget_fen, status, auto_schedule,
    wip_todo, wip_doing, wip_blocked, version, created_at, updated_at)
SELECT g,
       (ARRAY['双11大促', '618年中大促', '年货节', '新品首发', '品牌日', '周年庆', '开学季',
              '春夏上新', '秋冬上新', '38女王节'])[1 + g % 10] || ' · ' || b || ' #' || g,
       b, 'east', '{douyin,taobao}', s, s + (7 + g % 24) * interval '1 day', 1 + g % 50,
       CASE WHEN g % 3 <> 0 THEN (50 + g % 950) * 1000000::bigint ELSE 0 END,
       CASE WHEN g % 2 = 0 THEN (g % 90 + 10) * 10000 ELSE 0 END,
       CASE WHEN g % 4 = 0 THEN (g % 50 + 1) * 1000 ELSE 0 END,
       CASE WHEN g % 3 <> 0 THEN (g % 200 + 20) * 100000::bigint ELSE 0 END,
       (ARRAY['proposed', 'planning', 'executing', 'executing', 'reviewing'])[1 + g % 5],
       g % 4 = 0, CASE WHEN g % 5 = 0 THEN 20 ELSE 0 END, CASE WHEN g % 5 = 0 THEN 8 ELSE 0 END,
       CASE WHEN g % 10 = 0 THEN 3 ELSE 0 END, 1 + g % 3,
       now() - interval '60 days' + (g % 86400) * interval '1.000137 second',
       now() - interval '20 days' + (g % 86400) * interval '1.000291 second'
FROM generate_series(1, :projects) g,
     LATERAL (SELECT (ARRAY['花西子', '完美日记', '李宁', '安踏', '三只松鼠', '良品铺子', '珀莱雅',
                            '薇诺娜', '元气森林', '波司登', '小米', '欧莱雅', 'Anta Kids',
                            'Perfect Diary', 'L''Oréal Paris'])[1 + (g * 7) % 15] AS b,
                     date_trunc('day', now()) + interval '3 days 12 hours'
                     + (g % 400) * interval '1 day' AS s) x;
SELECT setval('tasks.projects_id_seq', :projects);
SQL
echo "seed projects=$projects tasks=0 seconds=$(seconds)"

seed <<SQL
$seed_prelude
INSERT INTO tasks.tasks (id, project_id, title, description, phase, assignee_id, role, priority,
    starts_at, due_at, estimate_hours, status, template_id, version, created_at, updated_at)
SELECT (p - 1) * :per + k, p,
       (ARRAY['选品 Select products and prices', 'Confirm stock with the ERP',
              'Write the show script', 'Warm-up posts and short videos (预热)', 'Set up coupons',
              'Rehearse the script', 'Brief customer service', 'Equipment and network test',
              'Live checklist: cart, coupons, comments', '复盘 Post-show review',
              'Book the anchor', 'Order samples'])[1 + k % 12] || ' ' || k,
       CASE WHEN k % 3 = 0 THEN 'Agree it with the brand team; SKUs and prices are in the "shared" sheet.'
            ELSE '' END,
       (ARRAY['prep', 'prep', 'prep', 'live', 'review'])[1 + k % 5],
       CASE WHEN k % 7 = 0 THEN 0 ELSE 1 + (p * 7 + k) % 200 END,
       (ARRAY['operator', 'content', 'cs', 'anchor', 'field_control'])[1 + k % 5],
       (ARRAY['P0', 'P1', 'P2', 'P2', 'P3'])[1 + (p + k) % 5],
       CASE WHEN k % 25 = 0 THEN NULL ELSE st END,
       st + (1 + k % 48) * interval '1 hour',
       (k % 8) * 0.5,
       (ARRAY['todo', 'todo', 'doing', 'done', 'done'])[1 + (p + k) % 5],
       CASE WHEN k <= 10 THEN (SELECT id FROM tasks.templates WHERE builtin_key = 'big_promotion') END,
       1 + k % 2,
       now() - interval '40 days' + p * interval '1 second' + k * interval '0.001234 second',
       now() - interval '10 days' + p * interval '1 second' + k * interval '0.003457 second'
FROM generate_series(1, :projects) p, generate_series(1, :per) k,
     LATERAL (SELECT date_trunc('day', now()) + interval '3 days 1 hour'
                     + (p % 400) * interval '1 day' + k * interval '2 hours' AS st) x;
SELECT setval('tasks.tasks_id_seq', (:projects)::bigint * :per);
SQL
tasks=$((projects * per))
echo "seed projects=$projects tasks=$tasks seconds=$(seconds)"

seed <<SQL
$seed_prelude
INSERT INTO tasks.task_checklist (task_id, text, done)
SELECT t, (ARRAY['Cart order checked', 'Coupons live', 'Stock per SKU reserved',
                 'FAQ sheet shared'])[1 + t % 4], t % 3 = 0
FROM generate_series(1, (:projects)::bigint * :per, 5) t;
INSERT INTO tasks.task_deps (task_id, depends_on)
SELECT (p - 1) * :per + k, (p - 1) * :per + k - 1
FROM generate_series(1, :projects) p, generate_series(2, least(4, :per)) k;
RESET session_replication_role;
VACUUM ANALYZE;
SQL
checklist=$("${psql[@]}" -c "SELECT count(*) FROM tasks.task_checklist")
deps=$("${psql[@]}" -c "SELECT count(*) FROM tasks.task_deps")
echo "seed projects=$projects tasks=$tasks checklist=$checklist deps=$deps vacuumed seconds=$(seconds)"

# --- sr-gatewayd --------------------------------------------------------------------------------
echo 'bench-password-1' | "$build/bin/sr-gatewayd" bootstrap-admin bench >/dev/null 2>"$tmp/bootstrap.log"
port=$(free_port) admin=$(free_port)
SR_BUS_PUB=$front SR_BUS_SUB=$back SR_ADMIN_PORT=$admin SR_GATEWAY_BIND=127.0.0.1:$port \
  SR_GATEWAY_RATE=0 SR_GATEWAY_THREADS=$threads SR_GATEWAY_ACCESS_LOG=$access_log \
  SR_GATEWAY_TASKS_RPC=$task_rpc "$build/bin/sr-gatewayd" >"$tmp/gatewayd.log" 2>&1 &
pids+=($!)
wait_http "http://127.0.0.1:$admin/healthz"
wait_log "$tmp/gatewayd.log" 'event=started' # the admin endpoint answers before the API listens
gateway=http://127.0.0.1:$port
token=$(curl -fsS -X POST "$gateway/api/v1/auth/login" -H 'Content-Type: application/json' \
  -d '{"user":"bench","password":"bench-password-1"}' | sed -E 's/.*"token":"([^"]+)".*/\1/')
auth="Authorization: Bearer $token"
curl -fsS -o /dev/null "$gateway/api/v1/me" -H "$auth"

# --- the reference ------------------------------------------------------------------------------
mkdir "$tmp/reference"
cp "$root/tests/bench/reference/package.json" "$root/tests/bench/reference/package-lock.json" \
  "$root/tests/bench/reference/server.js" "$tmp/reference/"
(cd "$tmp/reference" && npm ci --no-audit --no-fund --loglevel=error) >"$tmp/npm.log" 2>&1 \
  || { echo "bench-gateway: npm ci failed:" >&2; tail -n 20 "$tmp/npm.log" >&2; exit 1; }
ref_port=$(free_port)
(cd "$tmp/reference" && PORT=$ref_port DATABASE_URL=$SR_DB_URL BENCH_TOKEN=$token \
  PG_POOL_MAX=$pool NODE_ENV=production exec node server.js) >"$tmp/reference.log" 2>&1 &
pids+=($!)
wait_log "$tmp/reference.log" 'reference: listening'
reference=http://127.0.0.1:$ref_port

# --- the same JSON from both --------------------------------------------------------------------
# jq -S sorts the keys; the walk makes every number a double, so 2.0 (jansson) equals 2 (node)
canonical() { jq -S 'walk(if type == "number" then . + 0 else . end)' "$1"; }
fetch() { # fetch BASE PATH OUT - the body of a GET; fails on a non-2xx answer
  local code
  code=$(curl -sS -o "$3" -w '%{http_code}' "$1$2" -H "$auth")
  case "$code" in 2??) ;; *) echo "bench-gateway: GET $1$2 answered $code: $(head -c 600 "$3")" >&2; return 1 ;; esac
}
sample=$(( (projects + 1) / 2 ))
for path in "/api/v1/projects/$sample" "/api/v1/projects/$sample/tasks?limit=$limit"; do
  fetch "$gateway" "$path" "$tmp/gateway.json"
  fetch "$reference" "$path" "$tmp/reference.json"
  if ! diff -u --label "gateway $path" --label "reference $path" \
      <(canonical "$tmp/gateway.json") <(canonical "$tmp/reference.json") >"$tmp/json.diff"; then
    echo "bench-gateway: the gateway and the reference differ on GET $path:" >&2
    cat "$tmp/json.diff" >&2
    exit 1
  fi
  echo "same_json endpoint=${path/"/$sample"/"/{id}"} yes"
done

# --- wrk ----------------------------------------------------------------------------------------
# run_wrk BASE SUFFIX SECONDS OUT - random projects under BASE/api/v1/projects/ID SUFFIX
run_wrk() {
  wrk -t"$wrk_threads" -c"$conns" -d"${3}s" --latency -H "$auth" \
    -s "$root/tests/bench/random-project.lua" "$1" -- "$projects" /api/v1/projects/ "$2" >"$4"
}
# parse OUT - "rps p99_ms non_2xx socket_errors requests" from wrk's report
parse() {
  awk '
    / requests in / { requests = $1 }
    /Requests\/sec:/ { rps = $2 }
    /^ +99%/ { p99 = $2 }
    /Non-2xx/ { non2xx = $NF }
    /Socket errors:/ { gsub(/,/, ""); errors = $4 + $6 + $8 + $10 }
    function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /s$/) return v * 1000; return v }
    END { printf "%.0f %.2f %d %d %d\n", rps, ms(p99), non2xx, errors, requests }
  ' "$1"
}
check() { # check NAME BASE SUFFIX OUT - fail loudly on a non-2xx answer or no answer at all
  local rps p99 non2xx errors requests
  read -r rps p99 non2xx errors requests < <(parse "$4")
  if [ "$non2xx" -ne 0 ] || [ "$requests" -eq 0 ]; then
    echo "bench-gateway: $1 gave $non2xx non-2xx answers in $requests on /api/v1/projects/{id}$3; wrk said:" >&2
    cat "$4" >&2
    echo "a sample answer:" >&2
    curl -sS -i --max-time 10 "$2/api/v1/projects/$((RANDOM % projects + 1))$3" -H "$auth" | head -c 1000 >&2 || true
    echo >&2
    exit 1
  fi
  [ "$errors" -eq 0 ] || echo "bench-gateway: warning: $1 had $errors socket errors (timeouts among them) in $requests requests on /api/v1/projects/{id}$3" >&2
}

echo "bench_setting wrk_threads=$wrk_threads connections=$conns seconds=$secs projects=$projects" \
  "tasks=$tasks tasks_per_project=$per SR_GATEWAY_THREADS=$threads" \
  "SR_GATEWAY_ACCESS_LOG=$access_log SR_GATEWAY_RATE=0 reference_pool=$pool" \
  "node=$(node --version) shared_buffers=$shared_buffers"
for suffix in "" "/tasks?limit=$limit"; do
  for side in gateway reference; do
    base=$gateway; [ "$side" = gateway ] || base=$reference
    run_wrk "$base" "$suffix" 2 "$tmp/warm-$side.out"
    check "$side (warm-up)" "$base" "$suffix" "$tmp/warm-$side.out"
  done
  for side in gateway reference; do
    base=$gateway; [ "$side" = gateway ] || base=$reference
    run_wrk "$base" "$suffix" "$secs" "$tmp/wrk-$side.out"
    check "$side" "$base" "$suffix" "$tmp/wrk-$side.out"
  done
  read -r g_rps g_p99 _ _ _ < <(parse "$tmp/wrk-gateway.out")
  read -r r_rps r_p99 _ _ _ < <(parse "$tmp/wrk-reference.out")
  awk -v e="/api/v1/projects/{id}$suffix" -v g="$g_rps" -v r="$r_rps" -v gp="$g_p99" -v rp="$r_p99" \
    'BEGIN { fmt = "endpoint=%s gateway_rps=%d reference_rps=%d ratio=%.2f gateway_p99_ms=%.2f reference_p99_ms=%.2f\n"
             printf(fmt, e, g, r, r > 0 ? g / r : 0, gp, rp) }'
done
