#!/usr/bin/env bash
# The fault table, long version (issue 13): runs every row of tests/suites/fault_table.rs
# (real service processes killed with SIGKILL and restarted, lost replies, a paused Redis, a
# stalled PostgreSQL, SIGTERM under load) several times, one row at a time, with loads
# VP_FAULTS_SCALE times those of the test command, and prints the table as Markdown: per
# fault, the runs, what was checked, the acknowledged operations, the lost ones (must be 0),
# the time to heal (median / worst) and the errors the clients saw, by code.
#
#   deploy/local/faults.sh [--runs N] [--scale S] [extra test filter, e.g. kill_9]
#
# Defaults: --runs 3 --scale 5. Uses the test PostgreSQL cluster (.local/test-pg, port 55433,
# fsync off) unless VP_PG_DIR / VP_PG_PORT say otherwise; every row starts its own Redis and
# database. Output in .local/faults/: rows.jsonl (one JSON line per row and run), table.md,
# test.log. Exit status 1 if any row failed (a lost acknowledged operation, a broken
# invariant, a missed deadline).
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
cd "$REPO"

RUNS=3
SCALE=5
FILTER=""
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) RUNS=$2; shift 2 ;;
    --scale) SCALE=$2; shift 2 ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) FILTER=$1; shift ;;
  esac
done

if ! command -v cargo >/dev/null 2>&1; then
  export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
fi
command -v jq >/dev/null 2>&1 || { echo "faults.sh: error: jq is needed (apt-get install jq)" >&2; exit 1; }

export VP_PG_DIR=${VP_PG_DIR:-$REPO/.local/test-pg} VP_PG_PORT=${VP_PG_PORT:-55433}
export VP_PG_FSYNC=${VP_PG_FSYNC:-off}
deploy/local/postgres.sh start >/dev/null
VP_TEST_PG_URL=$(deploy/local/postgres.sh url)
export VP_TEST_PG_URL

echo "faults.sh: building the service binaries" >&2
cargo build --locked --bins -p issuance -p redemption -p reconciliation 2>&1 | tail -n 1 >&2

OUT="$REPO/.local/faults"
mkdir -p "$OUT"
ROWS="$OUT/rows.jsonl"
: >"$ROWS"
: >"$OUT/test.log"
export VP_FAULTS_REPORT="$ROWS" VP_FAULTS_SCALE="$SCALE"

status=0
for run in $(seq 1 "$RUNS"); do
  echo "faults.sh: run $run of $RUNS (scale $SCALE)" >&2
  # One row at a time: the rows measure time to heal and stop times.
  if ! cargo test --locked -p system-tests --test system -- "fault_table::${FILTER}" \
      --test-threads=1 >>"$OUT/test.log" 2>&1; then
    echo "faults.sh: run $run: a row FAILED (see $OUT/test.log)" >&2
    status=1
  fi
done

jq -rs --argjson runs "$RUNS" --argjson scale "$SCALE" '
  def dur: if . == null then "–"
           elif . < 1000 then "\(.) ms"
           else ((. / 100) | floor) as $t | "\(($t / 10) | floor).\($t % 10) s" end;
  "Measured with `deploy/local/faults.sh --runs \($runs) --scale \($scale)`.\n",
  "| fault | runs | what was checked | acknowledged | lost | time to heal (median / worst) | client errors by code | notes (last run) |",
  "|---|---|---|---|---|---|---|---|",
  (group_by(.fault)[] |
    (map(.heal_ms) | map(select(. != null)) | sort) as $h |
    (map(.errors | to_entries[]) | group_by(.key)
       | map("\(.[0].key) \(map(.value) | add)") | join(", ")) as $e |
    "| \(.[0].fault) | \(length) | \(.[0].checked) | \(map(.acknowledged) | add) | \(map(.lost) | add) | "
    + (if ($h | length) == 0 then "–" else "\($h[(($h | length) / 2) | floor] | dur) / \($h[-1] | dur)" end)
    + " | \(if $e == "" then "none" else $e end) | \(.[-1].note) |")
' "$ROWS" | tee "$OUT/table.md"
exit "$status"
