#!/usr/bin/env bash
# test_run.sh - `make run` / `make stop` as a user runs them (deploy/run.sh), in a scratch var
# folder and on shifted ports so a developer's own running suite is not disturbed: the embedded
# PostgreSQL starts, every daemon answers /healthz and /metrics, a second start starts no
# duplicates, and stop leaves no process behind.
set -euo pipefail
root=$SR_TEST_ROOT
export SR_VAR_DIR=$SR_TEST_TMP/run-var SR_BIN_DIR=$SR_TEST_BIN
unset SR_DB_URL

# an offset whose PostgreSQL, admin and bus ports are all free
for _ in $(seq 1 50); do
  off=$(( (RANDOM % 400 + 10) * 10 ))
  busy=$(ss -Htln | awk '{print $4}' | grep -cE ":($((7432 + off))|$((7600 + off))|$((7601 + off))|$((7602 + off))|$((7610 + off))|$((7620 + off))|$((7660 + off))|$((7661 + off))|$((7680 + off))|$((7690 + off))|$((7700 + off)))\$" || true)
  [ "$busy" -eq 0 ] && break
done
export SR_PORT_OFFSET=$off
trap '"$root/deploy/run.sh" stop >/dev/null 2>&1 || true' EXIT

fail() { echo "FAIL: $*"; exit 1; }

out=$("$root/deploy/run.sh" start) || fail "run.sh start failed: $out"
echo "$out"
grep -qF "PostgreSQL  running   postgresql://showrunner@127.0.0.1:$((7432 + off))/showrunner" <<<"$out" \
  || fail "start did not print the database URL"
grep -qF "http://127.0.0.1:$((7600 + off))/healthz" <<<"$out" || fail "start did not print busd's URL"

health=$(curl -fsS "http://127.0.0.1:$((7600 + off))/healthz") || fail "busd /healthz not 200"
[ "$health" = '{"status":"ok","checks":{"bus":"ok"}}' ] || fail "unexpected health: $health"
metrics=$(curl -fsS "http://127.0.0.1:$((7600 + off))/metrics")
grep -qE '^sr_busd_messages_total [0-9]+$' <<<"$metrics" \
  || fail "/metrics has no sr_busd_messages_total counter"
[ "$(psql "postgresql://showrunner@127.0.0.1:$((7432 + off))/showrunner" -qAtc 'select 1')" = 1 ] \
  || fail "embedded PostgreSQL does not answer"

# live data out of the box: ingestd polls every room the simulator plays into PostgreSQL
db="postgresql://showrunner@127.0.0.1:$((7432 + off))/showrunner"
rooms=0
for _ in $(seq 1 100); do
  rooms=$(psql "$db" -qAtc 'select count(distinct (platform, room_id)) from metrics.room_samples')
  [ "$rooms" -ge 51 ] && break
  sleep 0.2
done
[ "$rooms" -ge 51 ] || fail "ingestd stored samples of $rooms rooms from the simulator, want 51"

pid=$(cat "$SR_VAR_DIR/run/busd.pid")
again=$("$root/deploy/run.sh" start) || fail "second start failed"
grep -qF "sr-busd already running (pid $pid)" <<<"$again" || fail "second start did not notice busd"
[ "$(pgrep -fc "$SR_TEST_BIN/sr-busd")" -eq 1 ] || fail "second start made a duplicate busd"

grep -qE "^sr-busd +running" <<<"$("$root/deploy/run.sh" status)" || fail "status does not show busd"
"$root/deploy/run.sh" stop
sleep 0.5
pgrep -f "$SR_TEST_BIN/sr-" && fail "daemons left running after stop"
pgrep -f "$SR_VAR_DIR/pg" && fail "PostgreSQL left running after stop"
grep -q "PostgreSQL  stopped" <<<"$("$root/deploy/run.sh" status)" || fail "status after stop"
grep -q "event=drained" "$SR_VAR_DIR/log/busd.log" || fail "busd did not drain on stop"
# a daemon that cannot start fails `run.sh start` at once with its exit status
t0=$SECONDS
if bad=$(SR_LOG_LEVEL=loud "$root/deploy/run.sh" start 2>&1); then fail "start with a bad setting succeeded"; fi
grep -qF "run: sr-busd exited with status 2" <<<"$bad" || fail "bad setting not reported: $bad"
grep -qF 'SR_LOG_LEVEL: "loud" is not debug, info, warn or error' <<<"$bad" || fail "log tail missing"
[ $((SECONDS - t0)) -lt 15 ] || fail "a failing daemon took $((SECONDS - t0)) s to report"
"$root/deploy/run.sh" stop
echo "2 passed, 0 failed"
