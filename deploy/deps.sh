#!/usr/bin/env bash
# deps.sh - the Debian packages Showrunner needs, checked or installed.
#
#   deploy/deps.sh check [build]     exit 0 when every package (or every build package) is
#                                    installed, else list what is missing
#   deploy/deps.sh install [build]   install what is missing (apt-get, non-interactive) when
#                                    root; otherwise print the exact command to run
# `make deps` installs all; `make` checks the build set, `make run` and `make test` all of it,
# installing what is missing. deploy/Dockerfile installs the build set the same way.
set -euo pipefail

BUILD_PACKAGES=(
  build-essential pkg-config git
  libzmq3-dev libpq-dev libprotobuf-c-dev protobuf-c-compiler
  libcurl4-openssl-dev libjansson-dev libmicrohttpd-dev libsodium-dev libssl-dev
)
RUN_PACKAGES=(
  libcmocka-dev clang-format postgresql-15 postgresql-client-15 curl wrk docker-compose
  procps iproute2 python3 python3-yaml nodejs openssl
)
if [ "${2:-all}" = build ]; then
  PACKAGES=("${BUILD_PACKAGES[@]}")
else
  PACKAGES=("${BUILD_PACKAGES[@]}" "${RUN_PACKAGES[@]}")
fi

missing() {
  local p
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || echo "$p"
  done
}

case "${1:-check}" in
  check)
    m=$(missing)
    [ "${2:-all}" = build ] || command -v npm >/dev/null || m="$m npm"
    [ -z "$m" ] && exit 0
    echo "missing Debian packages:" $m >&2
    exit 1
    ;;
  install)
    m=$(missing)
    if [ -z "$m" ] && { [ "${2:-all}" = build ] || command -v npm >/dev/null; }; then
      echo "deps: all ${#PACKAGES[@]} packages installed"; exit 0
    fi
    cmd="apt-get install -y --no-install-recommends $(echo $m)"
    if [ "$(id -u)" -ne 0 ]; then
      echo "deps: run as root:  apt-get update && $cmd" >&2
      exit 1
    fi
    echo "deps: installing: $(echo $m)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    # postgresql's own package would create and start a default cluster; ours are private
    mkdir -p /etc/postgresql-common/createcluster.d
    echo "create_main_cluster = false" > /etc/postgresql-common/createcluster.d/showrunner.conf
    $cmd
    # Debian's nodejs comes without npm (NodeSource's brings its own): the OpenAPI linter needs it
    command -v npm >/dev/null || apt-get install -y --no-install-recommends npm
    ;;
  *)
    echo "usage: deploy/deps.sh check|install [build]" >&2
    exit 2
    ;;
esac
