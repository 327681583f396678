#!/usr/bin/env bash
# test_readme_walkthrough.sh - the README's "Planning a 双十二 campaign with curl" block, run as
# printed: `make run` (deploy/run.sh, in a scratch var folder on shifted ports), the admin of
# "First steps", then the block between the walkthrough markers with only the API port changed;
# then the rows it must leave behind: one project in planning, two shows, twenty template tasks
# of which two are done, the anchor's comment, audit rows of each change.
set -euo pipefail
root=$SR_TEST_ROOT
export SR_VAR_DIR=$SR_TEST_TMP/walk-var SR_BIN_DIR=$SR_TEST_BIN
unset SR_DB_URL
fail() { echo "FAIL: $*"; exit 1; }

for _ in $(seq 1 50); do # an offset whose ports are all free
  off=$(( (RANDOM % 400 + 10) * 10 + 5 ))
  busy=0
  for p in 7432 7600 7601 7602 7610 7620 7630 7640 7650 7660 7661 7680 7690 7700; do
    [ -z "$(ss -Htln "sport = :$((p + off))")" ] || busy=1
  done
  [ $busy -eq 0 ] && break
done
export SR_PORT_OFFSET=$off
trap '"$root/deploy/run.sh" stop >/dev/null 2>&1 || true' EXIT
"$root/deploy/run.sh" start >"$SR_TEST_TMP/walk-start.log" || { cat "$SR_TEST_TMP/walk-start.log"; fail "make run"; }
db="postgresql://showrunner@127.0.0.1:$((7432 + off))/showrunner"
echo 'change-me-now-1' | SR_DB_URL=$db "$SR_TEST_BIN/sr-gatewayd" bootstrap-admin admin >/dev/null \
  || fail "bootstrap-admin"

awk '/<!-- walkthrough:begin -->/ {f = 1; next} /<!-- walkthrough:end -->/ {f = 0} f' \
  "$root/README.md" | sed '/^```/d' | sed "s|127.0.0.1:7680|127.0.0.1:$((7680 + off))|" \
  >"$SR_TEST_TMP/walkthrough.sh"
[ "$(grep -c 'curl' "$SR_TEST_TMP/walkthrough.sh")" -gt 20 ] || fail "no walkthrough found in README.md"
bash -euo pipefail "$SR_TEST_TMP/walkthrough.sh" >"$SR_TEST_TMP/walkthrough.out" 2>&1 ||
  { cat "$SR_TEST_TMP/walkthrough.out"; fail "the walkthrough stopped"; }

q() { psql "$db" -qAtc "$1"; }
passed=0
check() { # check SQL WANT WHAT
  local got
  got=$(q "$1")
  [ "$got" = "$2" ] || { cat "$SR_TEST_TMP/walkthrough.out"; fail "$3: $got, want $2"; }
  echo "ok: $3 = $2"
  passed=$((passed + 1))
}
check "select status from tasks.projects where name = '双十二大促'" planning "project status"
check "select count(*) from tasks.shows s join tasks.projects p on p.id = s.project_id where p.name = '双十二大促'" 2 "shows"
check "select count(*) from tasks.tasks where template_id is not null" 20 "template tasks"
check "select string_agg(title, ', ' order by title) from tasks.tasks where status = 'done'" \
  "Rehearse the script, 选品 Select products and prices" "tasks done"
check "select count(*) from tasks.task_comments where author = 'wang.fang'" 1 "comments"
check "select count(*) from tasks.task_deps" 22 "dependencies (11 per show)"
check "select count(*) from access.audit where entity = 'task' and actor_name = 'wang.fang'" 2 "anchor's audit rows"
check "select count(*) from access.audit where entity = 'show_template'" 2 "template applications audited"
for want in '"code":"anchor_busy"' '"code":"forbidden"' '"critical_path":["1","3","4","9","10"]'; do
  grep -qF "$want" "$SR_TEST_TMP/walkthrough.out" || fail "the walkthrough printed no $want"
  passed=$((passed + 1))
done
echo "$passed passed, 0 failed"
