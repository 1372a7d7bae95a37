#!/usr/bin/env bash
# The settlement benchmark (issues 4 and 14): generates N redemptions (default 1,000,000)
# spread over DAYS Beijing days from 2026-05-01 (default 1; 31 is a month, as a province
# settles monthly) in a fresh database with `reconciliation gen-bench` (binary COPY streamed
# from the generator), then settles that whole period (`--from --to`) with the release binary
# under `/usr/bin/time -v` and prints the wall time and the job's peak resident memory.
# Targets (issue 14): 10,000,000 redemptions in one period settle in ≤ 20 s wall with
# ≤ 200 MB peak RSS. The re-run must write nothing, and its report directory must be
# identical, byte for byte, to the first run's (`diff -r`).
#
#   deploy/local/settle-bench.sh [N] [DAYS]      (or VP_BENCH_DAYS=DAYS)
#   deploy/local/settle-bench.sh 10000000        # one day of 10 M
#   deploy/local/settle-bench.sh 10000000 31     # a month of 10 M
#
# Uses the test PostgreSQL cluster (.local/test-pg on port 55433, fsync off) unless VP_PG_DIR /
# VP_PG_PORT say otherwise. Set VP_BENCH_KEEP_DB=1 to keep the database. Output in
# .local/settle-bench/: gen.txt (the generator's line), time.txt (the full /usr/bin/time
# report), summary.txt, report/ (the first run), and the re-run's summary2.txt, report2/,
# time-rerun.txt.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
cd "$REPO"
N=${1:-1000000}
DAYS=${2:-${VP_BENCH_DAYS:-1}}
FROM=2026-05-01
TO=$(date -u -d "$FROM + $((DAYS - 1)) days" +%F)
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
echo "== generate $N redemptions over $DAYS day(s), $FROM..$TO =="
GEN_START=$(date +%s%N)
"$BIN" gen-bench --redemptions "$N" --day "$FROM" --days "$DAYS" | tee "$OUT/gen.txt"
psql -q "$APP__POSTGRES__URL" -c "CHECKPOINT" >/dev/null
echo "generated in $((($(date +%s%N) - GEN_START) / 1000000)) ms (COPY, VACUUM ANALYZE and CHECKPOINT included)"

echo "== settle $FROM..$TO ($N redemptions) =="
/usr/bin/time -v -o "$OUT/time.txt" "$BIN" settle --from "$FROM" --to "$TO" --actor bench --out "$OUT/report" \
  > "$OUT/summary.txt" 2> "$OUT/settle.log"
head -n 8 "$OUT/summary.txt"
echo
grep -E "Elapsed \(wall clock\)|Maximum resident set size" "$OUT/time.txt"
KB=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$OUT/time.txt")
echo "peak RSS: $((KB / 1024)) MB (target ≤ 200 MB); wall time target ≤ 20 s for 10,000,000 redemptions"

# What the settlement wrote: rows of every table it writes.
written() {
  psql -XAtq "$APP__POSTGRES__URL" -c "SELECT concat_ws(' ',
    (SELECT count(*) FROM settlement_runs), (SELECT count(*) FROM settlement_batches),
    (SELECT count(*) FROM settlement_county_shares), (SELECT count(*) FROM settlement_merchant_lines),
    (SELECT count(*) FROM settlement_subsidy_lines), (SELECT count(*) FROM settlement_advance_lines),
    (SELECT count(*) FROM settlement_batch_steps), (SELECT count(*) FROM ledger_accounts),
    (SELECT count(*) FROM ledger_postings))"
}
BEFORE=$(written)

echo "== re-run (must write nothing; its report directory must be identical) =="
/usr/bin/time -f "re-run: %e s wall, %M KB peak RSS" -o "$OUT/time-rerun.txt" \
  "$BIN" settle --from "$FROM" --to "$TO" --actor bench --out "$OUT/report2" \
  > "$OUT/summary2.txt" 2> "$OUT/settle2.log"
cat "$OUT/time-rerun.txt"
AFTER=$(written)
[ "$BEFORE" = "$AFTER" ] || { echo "the re-run wrote rows: $BEFORE -> $AFTER" >&2; exit 1; }
echo "re-run wrote nothing (rows of runs, batches, county shares, merchant/subsidy/advance lines, steps, accounts, postings: $AFTER)"
cmp "$OUT/summary.txt" "$OUT/summary2.txt" && echo "identical summary"
diff -r "$OUT/report" "$OUT/report2" && echo "identical report directory ($(ls "$OUT/report" | wc -l) files)"
