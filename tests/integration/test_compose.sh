#!/usr/bin/env bash
# test_compose.sh - the docker-compose.yml wiring, proven without a Docker engine: every
# Showrunner service in the compose file is started as a local process with the command and
# environment the file gives it (host names postgres, busd, ingestd and taskd mapped to 127.0.0.1, the database
# to the throwaway one), then its own health check command must pass.
set -euo pipefail
root=$SR_TEST_ROOT
work=$SR_TEST_TMP/compose
mkdir -p "$work"
fail() { echo "FAIL: $*"; exit 1; }

SR_DB_PASSWORD=compose-test docker-compose -f "$root/docker-compose.yml" config >"$work/compose.yml" \
  || fail "compose config"

# one line per service built from our image: name, then command and environment, tab-separated
/usr/bin/python3 - "$work/compose.yml" >"$work/services.tsv" <<'PY'
import sys, yaml
doc = yaml.safe_load(open(sys.argv[1]))
for name, svc in doc["services"].items():
    if not str(svc.get("image", "")).startswith("showrunner"):
        continue
    env = svc.get("environment") or {}
    if isinstance(env, list):
        env = dict(e.split("=", 1) for e in env)
    check = svc.get("healthcheck", {}).get("test", [])
    fields = [name, " ".join(svc["command"]), " ".join(check[1:])]
    fields += ["%s=%s" % (k, "" if v is None else v) for k, v in env.items()]
    print("\t".join(fields))
PY
[ -s "$work/services.tsv" ] || fail "no Showrunner services found in docker-compose.yml"
grep -q '^busd	' "$work/services.tsv" || fail "compose has no busd service"

pids=()
trap 'for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done; wait' EXIT
started=0
while IFS=$'\t' read -r name command check envs; do
  read -r -a cmd <<<"$command"
  read -r -a checkcmd <<<"$check"
  env_args=()
  IFS=$'\t' read -r -a kvs <<<"$envs"
  for kv in "${kvs[@]}"; do
    kv=${kv//@postgres:5432/@127.0.0.1:$SR_TEST_PG_PORT}
    kv=${kv//tcp:\/\/busd:/tcp://127.0.0.1:}
    kv=${kv//tcp:\/\/ingestd:/tcp://127.0.0.1:}
    kv=${kv//tcp:\/\/taskd:/tcp://127.0.0.1:}
    kv=${kv//0.0.0.0/127.0.0.1}
    kv=${kv//\/var\/lib\/showrunner/$work\/var-lib}
    env_args+=("$kv")
  done
  for kv in "${env_args[@]}"; do # the ports this service listens on must be free
    case ${kv%%=*} in *_PORT | *_BIND | *_FRONTEND | *_BACKEND) ;; *) continue ;; esac
    port=$(grep -oE '[0-9]{2,5}$' <<<"$kv") || continue
    [ -z "$(ss -Htln "sport = :$port")" ] || fail "port $port is in use (is 'make run' up? run 'make stop')"
  done
  echo "starting $name: ${cmd[*]} with ${#env_args[@]} variables"
  env -i PATH="$SR_TEST_BIN:/usr/bin:/bin" "${env_args[@]}" "$SR_TEST_BIN/${cmd[0]}" "${cmd[@]:1}" \
    >"$work/$name.log" 2>&1 &
  pids+=($!)
  ok=0
  for _ in $(seq 1 100); do
    if "${checkcmd[@]}" >/dev/null 2>&1; then ok=1; break; fi
    sleep 0.1
  done
  [ $ok -eq 1 ] || { cat "$work/$name.log"; fail "$name: health check '${checkcmd[*]}' never passed"; }
  echo "$name healthy: ${checkcmd[*]}"
  started=$((started + 1))
done <"$work/services.tsv"
echo "$started passed, 0 failed"
