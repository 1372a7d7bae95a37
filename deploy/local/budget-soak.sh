#!/usr/bin/env bash
# The budget invariant soak: runs the budget races again and again with varying seeds and
# concurrency, the invariant (Σ budget buckets + Σ discounts = budget, per campaign)
# checked after each, and stops at the first failing iteration with its seed.
#
#   deploy/local/budget-soak.sh [iterations]      (default 100; the issue's bar is 500)
#
# Each iteration runs, against the test PostgreSQL cluster (started like test.sh does):
#   - outage::budget_soak_round…  one round of sales, percentage sales, holds captured or
#     voided and racing reversals, its choices from VP_SOAK_SEED, at VP_SOAK_CONCURRENCY
#     (cycling 1, 2, 4, 8, 16, 32) with VP_SOAK_OPS operations;
#   - redemption_checkout::a_budget_smaller_than_demand_is_never_exceeded  (the budget race);
#   - loadtest_checkout_smoke::…  (the checkout smoke with its invariants), every
#     VP_SOAK_SMOKE_EVERY-th iteration (default 5: it is the slow one).
# Environment: VP_SOAK_SEED0 (first seed, default from the clock), VP_SOAK_OPS (default 60),
# VP_SOAK_SMOKE_EVERY. Output: .local/budget-soak/<start>/ holds each iteration's log;
# the summary line says how many iterations ran clean. Run it niced on a shared machine:
#   nice -n 10 deploy/local/budget-soak.sh 500
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
cd "$REPO"

iterations=${1:-100}
case "$iterations" in '' | *[!0-9]*) echo "usage: $0 [iterations]" >&2; exit 2 ;; esac
seed0=${VP_SOAK_SEED0:-$(date +%s)}
ops=${VP_SOAK_OPS:-60}
smoke_every=${VP_SOAK_SMOKE_EVERY:-5}

if ! command -v cargo >/dev/null 2>&1; then
  export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
fi
export VP_PG_DIR="${VP_PG_DIR:-$REPO/.local/test-pg}"
export VP_PG_PORT="${VP_TEST_PG_PORT:-${VP_PG_PORT:-auto}}"
export VP_PG_FSYNC=off
deploy/local/postgres.sh start >/dev/null
VP_TEST_PG_URL=$(deploy/local/postgres.sh url)
export VP_TEST_PG_URL

echo "budget-soak: building the system tests"
cargo test -p system-tests --test system --locked --no-run >/dev/null 2>&1 \
  || cargo test -p system-tests --test system --locked --no-run
bin=$(cargo test -p system-tests --test system --locked --no-run --message-format=json 2>/dev/null \
  | sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | tail -1)
[ -x "$bin" ] || { echo "budget-soak: test binary not found" >&2; exit 1; }

out="$REPO/.local/budget-soak/$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$out"
# A copy: a build in this checkout meanwhile must not take the binary away mid-soak.
cp "$bin" "$out/system-tests"
bin="$out/system-tests"
concurrencies=(1 2 4 8 16 32)
started=$(date +%s)
echo "budget-soak: $iterations iterations, first seed $seed0, $ops operations per round, logs in $out"

for i in $(seq 1 "$iterations"); do
  seed=$((seed0 + i))
  conc=${concurrencies[$(((i - 1) % ${#concurrencies[@]}))]}
  log="$out/iteration-$i.log"
  tests=(outage::budget_soak_round_keeps_buckets_plus_discounts_equal_to_the_budget
    redemption_checkout::a_budget_smaller_than_demand_is_never_exceeded)
  if [ "$smoke_every" -gt 0 ] && [ $((i % smoke_every)) -eq 0 ]; then
    tests+=(loadtest_checkout_smoke::the_harness_runs_checkout_and_mixed_and_verifies_no_double_redemption)
  fi
  if ! VP_SOAK_SEED=$seed VP_SOAK_CONCURRENCY=$conc VP_SOAK_OPS=$ops \
    "$bin" --exact --test-threads 1 "${tests[@]}" >"$log" 2>&1; then
    echo "budget-soak: iteration $i FAILED (seed $seed, concurrency $conc, tests ${tests[*]})"
    grep -E "panicked|seed|INVARIANT|≠|budget" "$log" | head -20 || true
    echo "budget-soak: log $log; rerun the round with"
    echo "  VP_SOAK_SEED=$seed VP_SOAK_CONCURRENCY=$conc VP_SOAK_OPS=$ops $bin --exact ${tests[0]}"
    echo "budget-soak: $((i - 1)) iteration(s) clean before the failure"
    exit 1
  fi
  rm -f "$log"
  if [ $((i % 10)) -eq 0 ] || [ "$i" -eq "$iterations" ]; then
    echo "budget-soak: $i/$iterations clean ($(($(date +%s) - started)) s)"
  fi
done
echo "budget-soak: all $iterations iterations clean (seeds $((seed0 + 1))..$((seed0 + iterations))) in $(($(date +%s) - started)) s"
