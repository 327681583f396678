#!/usr/bin/env bash
# test_openapi.sh - services/gatewayd/openapi.yaml against the gateway's route table: every route
# `sr-gatewayd routes` lists is described (path and method) and nothing else is; then the file is
# linted with @redocly/cli (tests/openapi/package-lock.json, installed from the npm registry into
# the build folder once; the 1.x line when this Node.js is older than 2.x needs).
set -euo pipefail
spec=$SR_TEST_ROOT/services/gatewayd/openapi.yaml
fail() { echo "FAIL: $*"; exit 1; }

"$SR_TEST_BIN/sr-gatewayd" routes >"$SR_TEST_TMP/routes.txt"
/usr/bin/python3 - "$spec" "$SR_TEST_TMP/routes.txt" <<'PY' || fail "openapi.yaml and the route table differ"
import sys, yaml
spec = yaml.safe_load(open(sys.argv[1]))
routes = {(l.split()[0].lower(), l.split()[1]) for l in open(sys.argv[2]) if l.strip()}
methods = {"get", "post", "put", "patch", "delete"}
described = {(m, p) for p, ops in spec["paths"].items() for m in ops if m in methods}
bad = 0
for m, p in sorted(routes - described):
    print("route missing from openapi.yaml: %s %s" % (m.upper(), p)); bad += 1
for m, p in sorted(described - routes):
    print("openapi.yaml describes a route the gateway does not have: %s %s" % (m.upper(), p)); bad += 1
print("%d routes, %d described" % (len(routes), len(described)))
sys.exit(1 if bad else 0)
PY

lint=$SR_TEST_BIN/../openapi-lint
command -v npm >/dev/null || fail "npm is missing (make deps installs it)"
node_ok=$(node -e 'const [a,b]=process.versions.node.split(".").map(Number); console.log(a>20||(a==20&&b>=19)?1:0)')
if [ ! -x "$lint/node_modules/.bin/redocly" ]; then
  rm -rf "$lint" && mkdir -p "$lint"
  if [ "$node_ok" = 1 ]; then
    cp "$SR_TEST_ROOT/tests/openapi/package.json" "$SR_TEST_ROOT/tests/openapi/package-lock.json" "$lint/"
    (cd "$lint" && npm ci --no-audit --no-fund --loglevel=error) || fail "npm ci @redocly/cli"
  else
    (cd "$lint" && npm init -y >/dev/null && npm install --no-audit --no-fund --loglevel=error @redocly/cli@1.34.5) ||
      fail "npm install @redocly/cli@1.34.5"
  fi
fi
"$lint/node_modules/.bin/redocly" lint "$spec" || fail "redocly lint"
echo "2 passed, 0 failed"
