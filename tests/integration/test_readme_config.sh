#!/usr/bin/env bash
# test_readme_config.sh - the README's reference tables match the code: every row that
# `sr-NAME --config-markdown` prints (the daemon's configuration table), every row of
# `sr-busd topics` (the topic table) and of `sr-gatewayd permissions` (the permission matrix)
# must appear in README.md exactly as printed.
set -euo pipefail
readme=$SR_TEST_ROOT/README.md
missing=0 rows=0
check_rows() { # check_rows SOURCE - rows on stdin
  local row
  while IFS= read -r row; do
    case "$row" in '| `'*) ;; *) continue ;; esac
    rows=$((rows + 1))
    if ! grep -qxF -- "$row" "$readme"; then
      echo "README.md lacks (from $1): $row"
      missing=$((missing + 1))
    fi
  done
}
for bin in "$SR_TEST_BIN"/sr-*; do
  check_rows "$(basename "$bin") --config-markdown" < <("$bin" --config-markdown)
done
check_rows "sr-busd topics" < <("$SR_TEST_BIN/sr-busd" topics)
check_rows "sr-gatewayd permissions" < <("$SR_TEST_BIN/sr-gatewayd" permissions)
[ $rows -gt 0 ] || { echo "no rows found"; exit 1; }
echo "$((rows - missing)) passed, $missing failed"
[ $missing -eq 0 ]
