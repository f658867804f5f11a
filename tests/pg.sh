#!/usr/bin/env bash
# A throwaway PostgreSQL server for `make test`: initdb in a temporary
# directory, listening only on a unix socket in it (no TCP port), stopped
# and deleted afterwards.
#   tests/pg.sh start DIR   prints the socket directory (DIR/socket)
#   tests/pg.sh stop DIR    stops the server and removes DIR
# Runs the server as the `postgres` user when started as root (initdb
# refuses root); as anyone else, as that user.
set -euo pipefail
BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
cmd=$1 dir=$2
as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
case "$cmd" in
  start)
    mkdir -p "$dir/socket"
    [ "$(id -u)" = 0 ] && chown -R postgres: "$dir"
    as_pg "$BIN/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 \
      --no-sync >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; exit 1; }
    # fsync stays on: the tests check what an acknowledged commit promises.
    as_pg "$BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 \
      -o "-c listen_addresses='' -c unix_socket_directories='$dir/socket' -c max_connections=300 -c shared_buffers=64MB" \
      start >/dev/null || { cat "$dir/server.log" >&2; exit 1; }
    echo "$dir/socket"
    ;;
  stop)
    if [ -d "$dir/data" ]; then
      as_pg "$BIN/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
    fi
    rm -rf "$dir"
    ;;
  *) echo "usage: $0 start|stop DIR" >&2; exit 2 ;;
esac
