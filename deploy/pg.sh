#!/usr/bin/env bash
# pg.sh - a private PostgreSQL 15 cluster in a folder, for `make run` and for tests.
#
#   deploy/pg.sh start DIR PORT   initialise DIR on first use, start on 127.0.0.1:PORT and a
#                                 unix socket in DIR/run; create role and database showrunner
#   deploy/pg.sh stop DIR         fast shutdown; no-op when not running
#   deploy/pg.sh status DIR       exit 0 when running
#   deploy/pg.sh url PORT         the SR_DB_URL for that port
# PostgreSQL refuses to run as root, so as root the cluster runs as the `postgres` user; when
# that user cannot reach DIR (a checkout under /root), the data lives under
# /var/lib/showrunner/ and DIR becomes a link to it. Authentication is `trust` on 127.0.0.1 and
# the socket only: this cluster is for one machine's development and tests, never exposed.
set -euo pipefail

PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}

as_pg() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

prepare_dir() {
  local dir=$1
  if [ "$(id -u)" -ne 0 ]; then mkdir -p "$dir"; return; fi
  if [ -L "$dir" ] || [ -d "$dir/data" ]; then return; fi
  mkdir -p "$dir"
  chown postgres:postgres "$dir"
  if ! runuser -u postgres -- test -w "$dir"; then
    rmdir "$dir"
    local real
    real=/var/lib/showrunner/pg-$(echo -n "$(realpath -m "$dir")" | sha256sum | cut -c1-12)
    mkdir -p "$real"
    chown postgres:postgres "$real"
    ln -s "$real" "$dir"
  fi
}

# ready DIR PORT - the server answers within 5 s (a postmaster just killed may linger a moment
# as a zombie that pg_ctl still counts as running)
ready() {
  local i
  for i in $(seq 1 50); do
    "$PGBIN/pg_isready" -q -h "$1/run" -p "$2" && return 0
    sleep 0.1
  done
  return 1
}

cmd=${1:-}
case "$cmd" in
  start)
    dir=$2 port=$3
    prepare_dir "$dir"
    dir=$(realpath "$dir")
    if [ ! -f "$dir/data/PG_VERSION" ]; then
      as_pg "$PGBIN/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 \
        || { echo "pg: initdb failed, see $dir/initdb.log" >&2; exit 1; }
      as_pg mkdir -p "$dir/run"
    fi
    if as_pg "$PGBIN/pg_ctl" -D "$dir/data" status >/dev/null 2>&1 && ready "$dir" "$port"; then
      echo "pg: already running in $dir"
    else
      as_pg "$PGBIN/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w -t 60 start \
        -o "-p $port -k $dir/run -c listen_addresses=127.0.0.1 -c max_connections=200 -c fsync=${SR_PG_FSYNC:-on} -c shared_buffers=${SR_PG_SHARED_BUFFERS:-256MB}" >/dev/null 2>&1 \
        || { echo "pg: start failed, see $dir/postgres.log" >&2; tail -5 "$dir/postgres.log" >&2; exit 1; }
    fi
    psql=("$PGBIN/psql" -h "$dir/run" -p "$port" -U postgres -d postgres -qAtX -v ON_ERROR_STOP=1)
    if [ "$("${psql[@]}" -c "select 1 from pg_roles where rolname='showrunner'")" != 1 ]; then
      "${psql[@]}" -c "create role showrunner login superuser"
    fi
    if [ "$("${psql[@]}" -c "select 1 from pg_database where datname='showrunner'")" != 1 ]; then
      "${psql[@]}" -c "create database showrunner owner showrunner"
    fi
    ;;
  stop)
    dir=$(realpath -m "$2") # through the link: the postgres user may not reach the link itself
    [ -f "$dir/data/PG_VERSION" ] || exit 0
    if as_pg "$PGBIN/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
      as_pg "$PGBIN/pg_ctl" -D "$dir/data" -m fast -w -t 60 stop >/dev/null
    fi
    ;;
  status)
    dir=$(realpath -m "$2")
    [ -f "$dir/data/PG_VERSION" ] && as_pg "$PGBIN/pg_ctl" -D "$dir/data" status >/dev/null 2>&1
    ;;
  url)
    echo "postgresql://showrunner@127.0.0.1:$2/showrunner"
    ;;
  *)
    echo "usage: deploy/pg.sh start DIR PORT | stop DIR | status DIR | url PORT" >&2
    exit 2
    ;;
esac
