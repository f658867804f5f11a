#!/usr/bin/env bash
# A throwaway PostgreSQL server for `make test`: initdb in a temporary
# directory, listening only on a unix socket in it (no TCP port), stopped
# and deleted afterwards.
#   tests/pg.sh start DIR   prints the socket directory (DIR/socket)
#   tests/pg.sh stop DIR    stops the server and removes DIR
#   tests/pg.sh halt DIR    stops the server, keeps DIR (a test's outage)
#   tests/pg.sh resume DIR  starts a halted server again
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
    cat >>"$dir/data/postgresql.conf" <<CONF
listen_addresses = ''
unix_socket_directories = '$dir/socket'
max_connections = 300
shared_buffers = 64MB
CONF
    as_pg "$BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 start >/dev/null ||
      { cat "$dir/server.log" >&2; exit 1; }
    echo "$dir/socket"
    ;;
  halt)
    as_pg "$BIN/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null
    ;;
  resume)
    as_pg "$BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 start >/dev/null
    ;;
  stop)
    if [ -d "$dir/data" ]; then
      as_pg "$BIN/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
    fi
    rm -rf "$dir"
    ;;
  *) echo "usage: $0 start|stop|halt|resume DIR" >&2; exit 2 ;;
esac
