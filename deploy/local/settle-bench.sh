#!/usr/bin/env bash
# The settlement benchmark (issue 4): generates one Beijing day of N redemptions (default
# 1,000,000) in a fresh database with `reconciliation gen-bench` (INSERT … SELECT
# generate_series, inside PostgreSQL), then settles that day with the release binary under
# `/usr/bin/time -v` and prints the wall time and the job's peak resident memory.
#
#   deploy/local/settle-bench.sh [N]
#
# Uses the test PostgreSQL cluster (.local/test-pg on port 55433, fsync off) unless VP_PG_DIR /
# VP_PG_PORT say otherwise. Set VP_BENCH_KEEP_DB=1 to keep the database. Output in
# .local/settle-bench/: time.txt (the full /usr/bin/time report), summary.txt, report/.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
cd "$REPO"
N=${1:-1000000}
DAY=2026-05-01
export VP_PG_DIR=${VP_PG_DIR:-$REPO/.local/test-pg} VP_PG_PORT=${VP_PG_PORT:-55433}
export VP_PG_FSYNC=${VP_PG_FSYNC:-off}
deploy/local/postgres.sh start >/dev/null

if [ ! -x /usr/bin/time ]; then
  echo "installing GNU time (/usr/bin/time)"
  if [ "$(id -u)" -eq 0 ]; then apt-get install -y -q time >/dev/null; else sudo apt-get install -y -q time >/dev/null; fi
fi

cargo build --release --locked -p reconciliation 2>&1 | tail -n 1
BIN="$REPO/target/release/reconciliation"

PG_ADMIN=$(deploy/local/postgres.sh url)
DB=settle_bench_$(date +%Y%m%d%H%M%S)
psql -q "$PG_ADMIN" -c "CREATE DATABASE $DB" >/dev/null
export APP__POSTGRES__URL="${PG_ADMIN%/*}/$DB"
cleanup() {
  if [ -z "${VP_BENCH_KEEP_DB:-}" ]; then
    psql -q "$PG_ADMIN" -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true
  else
    echo "kept database $DB"
  fi
}
trap cleanup EXIT

OUT="$REPO/.local/settle-bench"
rm -rf "$OUT" && mkdir -p "$OUT"
"$BIN" migrate >/dev/null
"$BIN" gen-bench --redemptions "$N" --day "$DAY"
psql -q "$APP__POSTGRES__URL" -c "CHECKPOINT" >/dev/null

echo "== settle $DAY ($N redemptions) =="
/usr/bin/time -v -o "$OUT/time.txt" "$BIN" settle --from "$DAY" --to "$DAY" --actor bench --out "$OUT/report" \
  > "$OUT/summary.txt" 2> "$OUT/settle.log"
head -n 8 "$OUT/summary.txt"
echo
grep -E "Elapsed \(wall clock\)|Maximum resident set size" "$OUT/time.txt"
KB=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$OUT/time.txt")
echo "peak RSS: $((KB / 1024)) MB (target ≤ 200 MB); wall time target ≤ 15 s"

echo "== re-run (must write nothing and print the same summary) =="
/usr/bin/time -f "re-run: %e s wall, %M KB peak RSS" -o "$OUT/time-rerun.txt" \
  "$BIN" settle --from "$DAY" --to "$DAY" --actor bench > "$OUT/summary2.txt" 2>/dev/null
cat "$OUT/time-rerun.txt"
cmp "$OUT/summary.txt" "$OUT/summary2.txt" && echo "identical summary"
