#!/bin/bash
# Creates/s with and without a concurrent `aftercommit backup` of a ~1 GiB
# database (README, "Deploying at the edge"). Needs a release build (`make
# build`), wrk and sqlite3. Rounds alternate: SECS seconds of wrk alone, then
# SECS seconds of wrk while a backup runs (pick SECS below the backup's time).
#   bench/backup_impact.sh [WORKDIR]     env: SECS=12 CONN=8 ROUNDS=3 PORT=18915
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
B=${AFTERCOMMIT_BIN:-$HERE/../build/aftercommit}
D=${1:-/tmp/aftercommit-backup-bench}
PORT=${PORT:-18915}
SECS=${SECS:-12}
CONN=${CONN:-8}
ROUNDS=${ROUNDS:-3}
mkdir -p "$D"
rm -f "$D"/big.db* "$D"/copy.db*
if [ ! -f "$D/seed.db" ]; then  # 262144 blobs of 3900 bytes: one 4 KiB page each
  "$B" migrate --db "$D/seed.db"
  sqlite3 "$D/seed.db" "PRAGMA journal_mode=WAL; CREATE TABLE ballast (b BLOB NOT NULL);
    WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM n WHERE x < 262144)
    INSERT INTO ballast SELECT randomblob(3900) FROM n; PRAGMA wal_checkpoint(TRUNCATE);" >/dev/null
fi
cp "$D/seed.db" "$D/big.db"
ls -l "$D/big.db"
"$B" serve --db "$D/big.db" --port "$PORT" --log-format json 2>/dev/null >/dev/null &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true' EXIT
sleep 1
wrkrun() {
  BENCH_DIR=$HERE BENCH_RUN=$(date +%s%N) wrk -t2 -c"$CONN" -d"${1}s" --timeout 10s \
      -s "$HERE/create.lua" "http://127.0.0.1:$PORT" |
    sed -n 's/^BENCH_JSON //p' |
    python3 -c 'import json,sys; r=json.load(sys.stdin); print("%.0f creates/s (p50 %.1f ms, p99 %.1f ms, non2xx %d, socket errors %d)" % (r["requests"]/(r["duration_us"]/1e6), r["p50_us"]/1000, r["p99_us"]/1000, r["non2xx"], r["socket_errors"]))'
}
wrkrun 3 >/dev/null  # warm-up
for round in $(seq "$ROUNDS"); do
  echo "round $round: without backup: $(wrkrun "$SECS")"
  rm -f "$D/copy.db"
  ( "$B" backup --db "$D/big.db" --to "$D/copy.db" ${BACKUP_ARGS:-} > "$D/backup.out" 2>&1 ) &
  BK=$!
  echo "round $round: during backup:  $(wrkrun "$SECS")"
  wait $BK
  cat "$D/backup.out"
done
