#!/usr/bin/env bash
# free-port.sh - print a TCP port nobody listens on, from 20000-49999.
set -euo pipefail
for _ in $(seq 1 200); do
  p=$((20000 + RANDOM % 30000))
  if [ -z "$(ss -Htln "sport = :$p" 2>/dev/null)" ]; then echo "$p"; exit 0; fi
done
echo "free-port: no free port found" >&2
exit 1
