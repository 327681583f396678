#!/usr/bin/env bash
# run.sh BUILD - run every test: unit binaries, then integration binaries and scripts against a
# throwaway PostgreSQL started here and stopped on exit, even when a test fails.
#
# Environment the integration tests get:
#   SR_TEST_DB_URL   the throwaway database          SR_TEST_PG_DIR  its folder (deploy/pg.sh)
#   SR_TEST_PG_PORT  its port                         SR_TEST_BIN     the daemons (BUILD/bin)
#   SR_TEST_ROOT     the checkout                     SR_TEST_TMP     a scratch folder
# Each binary's output goes to BUILD/test-logs/NAME.log and is printed when it fails. The last
# line is "N passed, N failed". SR_TEST_ONLY=PATTERN runs only the tests whose name (e.g.
# "integration/test_ingestd") contains PATTERN.
set -u
build=${1:?usage: tests/run.sh BUILD}
root=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "$build" && pwd)
logs=$build/test-logs
rm -rf "$logs" && mkdir -p "$logs"
pass=0 fail=0 failed=()

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

run_one() {
  local name=$1; shift
  case $name in *"${SR_TEST_ONLY:-}"*) ;; *) return 0 ;; esac
  local log=$logs/$(echo "$name" | tr '/' '_').log
  local start=$SECONDS
  if timeout 600 "$@" >"$log" 2>&1; then
    pass=$((pass + 1))
    printf 'PASS %-48s %3ss  %s\n' "$name" $((SECONDS - start)) "$(grep -E 'PASSED|passed' "$log" | tail -1)"
  else
    fail=$((fail + 1)); failed+=("$name")
    printf 'FAIL %-48s %3ss\n' "$name" $((SECONDS - start))
    sed 's/^/    | /' "$log" | tail -80
  fi
}

export SR_TEST_ROOT=$root
echo "== unit tests"
for t in "$build"/tests/unit/*/test_*; do
  [ -x "$t" ] && run_one "unit/${t#"$build"/tests/unit/}" "$t"
done

echo "== integration tests (throwaway PostgreSQL)"
tmp=$(mktemp -d /tmp/sr-test.XXXXXX)
chmod 755 "$tmp"
port=$("$root/deploy/free-port.sh")
cleanup() {
  "$root/deploy/pg.sh" stop "$tmp/pg" >/dev/null 2>&1
  pkill -f "$tmp" >/dev/null 2>&1
  rm -rf "$tmp"
}
trap cleanup EXIT
if ! "$root/deploy/pg.sh" start "$tmp/pg" "$port" >"$logs/pg-start.log" 2>&1; then
  cat "$logs/pg-start.log"
  fail=$((fail + 1)); failed+=("postgresql-start")
else
  export SR_TEST_DB_URL=$("$root/deploy/pg.sh" url "$port")
  export SR_TEST_PG_DIR=$tmp/pg SR_TEST_PG_PORT=$port SR_TEST_BIN=$build/bin
  export SR_TEST_TMP=$tmp
  for t in "$build"/tests/integration/test_*; do
    [ -x "$t" ] && run_one "integration/$(basename "$t")" "$t"
  done
  for t in "$root"/tests/integration/test_*.sh; do
    [ -f "$t" ] && run_one "integration/$(basename "$t")" bash "$t"
  done
fi

echo
[ $fail -gt 0 ] && echo "failed: ${failed[*]}"
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
