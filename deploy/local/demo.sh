#!/usr/bin/env bash
# The README's demo command: sets everything up on this machine (packages, a private
# PostgreSQL and a private Redis with its append-only file on, secrets, the build of the
# services and of the pages, migrations), starts the issuance and redemption services, and
# drives the demo against them: sample programs and campaigns, a list issuance, a rush of
# residents, merchants redeeming at signed terminals, the seeds' other schemes (car trade-in
# applications reviewed by the city, scenic tickets, 2025 trade-in items with a green extra
# and an advance, the annual card, a lottery round checked with verify-draw), then the day's settlement and a
# Redis/PostgreSQL cross-check. Then it starts the finance console (reconciliation serve) and
# KEEPS THE SERVICES RUNNING, with the residents' page, a paired web till and the console
# (today's settlement waiting to be confirmed) to try, until Ctrl-C.
#
#   deploy/local/demo.sh [--exit] [demo driver options, e.g. --residents 500]
#
#   --exit   stop the services once the story is told (today's run-and-exit, for CI)
set -euo pipefail
STAY=1
ARGS=()
for a in "$@"; do
  if [ "$a" = --exit ]; then STAY=0; else ARGS+=("$a"); fi
done
REPO=$(cd "$(dirname "$0")/../.." && pwd)
cd "$REPO"
STATE="$REPO/.local"
mkdir -p "$STATE"

# shellcheck source=deploy/local/stack.sh
. deploy/local/stack.sh
vp_stack_up demo "$STATE/pg" "${VP_PG_PORT:-55432}" "$STATE/redis" "${VP_REDIS_PORT:-56379}" \
  issuance redemption reconciliation loadtest

export APP__SERVER__PORT="${VP_ISSUANCE_PORT:-8080}"
# The rush comes from one address (this machine): lift the per-IP limit for the demo.
export APP__RATE_LIMITS__IP_PER_SECOND=100000 APP__RATE_LIMITS__IP_BURST=100000
export APP__LOG__FORMAT=json APP__LOG__LEVEL="warn,tracing_actix_web=error"
# The pages, served by the services themselves; the dev sign-in for the residents' page.
deploy/local/web.sh
export APP__WEB__DIR="$REPO/services/web/dist"

"$BIN/issuance" migrate
APP__DEV_IDP__ENABLED=true "$BIN/issuance" serve > "$STATE/issuance.log" 2>&1 &
ISSUANCE_PID=$!
REDEMPTION_PORT="${VP_REDEMPTION_PORT:-8081}"
# One terminal per merchant stands in for a whole shopping street: lift its request rate.
APP__SERVER__PORT=$REDEMPTION_PORT APP__RATE_LIMITS__TERMINAL_PER_SECOND=100000 \
  APP__RATE_LIMITS__TERMINAL_BURST=100000 "$BIN/redemption" serve > "$STATE/redemption.log" 2>&1 &
REDEMPTION_PID=$!
trap 'kill $ISSUANCE_PID $REDEMPTION_PID 2>/dev/null || true; wait $ISSUANCE_PID $REDEMPTION_PID 2>/dev/null || true' EXIT
echo "== issuance service on :$APP__SERVER__PORT (pid $ISSUANCE_PID, log $STATE/issuance.log) =="
echo "== redemption service on :$REDEMPTION_PORT (pid $REDEMPTION_PID, log $STATE/redemption.log) =="

"$BIN/demo" --issuance "http://127.0.0.1:$APP__SERVER__PORT" --redemption "http://127.0.0.1:$REDEMPTION_PORT" \
  --secrets-dir "$SECRETS" ${ARGS[@]+"${ARGS[@]}"}

echo
echo "== In PostgreSQL ($DB) =="
psql -q "${PG_ADMIN%/*}/$DB" -c "SELECT c.id, c.name, count(v.*) AS vouchers, count(DISTINCT v.person_id) AS people
  FROM campaigns c LEFT JOIN vouchers v ON v.campaign_id = c.id GROUP BY c.id, c.name ORDER BY c.id"
psql -q "${PG_ADMIN%/*}/$DB" -c "SELECT kind, count(*) FROM events GROUP BY kind ORDER BY kind"

# The lottery's published draw, recomputed as anyone can (the seed against its commitment,
# the winners from the published registration hashes).
echo
echo "== The lottery's published draw, checked with issuance verify-draw =="
"$BIN/issuance" verify-draw --file "$STATE/lottery-draw.json"

# 预拨资金: the province advances the appliance store money before settling; the settlement
# draws the advance down by what the store earned and shows the balance owed either way.
# shellcheck disable=SC1091
. "$STATE/demo-advance.env"
echo
echo "== An advance to the appliance store (reconciliation advance) =="
"$BIN/reconciliation" advance --program "$ADVANCE_PROGRAM" --merchant "$ADVANCE_MERCHANT" \
  --amount-fen "$ADVANCE_FEN" --reference "demo-advance-$ADVANCE_PROGRAM" \
  --api-key-file "$STATE/province-officer.key" --secrets-dir "$SECRETS"

# Today's settlement (Beijing day): who pays the merchants, the province's share of the city's
# spending and the city's own share, as balanced ledger postings and reports.
DAY=$(TZ=Asia/Shanghai date +%F)
echo
echo "== Settlement of $DAY (reconciliation) =="
"$BIN/reconciliation" settle --from "$DAY" --to "$DAY" --actor demo --out "$STATE/settlement-$DAY"
echo "Reports written to $STATE/settlement-$DAY/ (CSV with a BOM for spreadsheets, JSON, summary.txt)"
echo "   the schemes' lines (trade-in payables to residents, tickets, green extras): subsidy_lines.csv;"
echo "   the advance, its drawdown and the balance: advances.csv"
echo
echo "== Cross-check of Redis against PostgreSQL =="
"$BIN/reconciliation" check --max-outbox-lag 1000 || echo "(differences above)"

# The finance console: the settlement above waits there for the cities and the province to
# confirm it. The dev identity provider lets the demo sign in as any officer without a key.
CONSOLE_PORT="${VP_CONSOLE_PORT:-8082}"
APP__SERVER__PORT=$CONSOLE_PORT APP__DEV_IDP__ENABLED=true \
  "$BIN/reconciliation" serve > "$STATE/reconciliation.log" 2>&1 &
CONSOLE_PID=$!
trap 'kill $ISSUANCE_PID $REDEMPTION_PID $CONSOLE_PID 2>/dev/null || true; wait $ISSUANCE_PID $REDEMPTION_PID $CONSOLE_PID 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  curl -fsS "http://127.0.0.1:$CONSOLE_PORT/readyz" >/dev/null 2>&1 && break
  sleep 0.1
done
curl -fsS "http://127.0.0.1:$CONSOLE_PORT/readyz" >/dev/null
echo
echo "== The finance console on :$CONSOLE_PORT (pid $CONSOLE_PID, log $STATE/reconciliation.log) =="
echo "   http://127.0.0.1:$CONSOLE_PORT/console/  — sign in (开发环境登录) as jincheng-city to confirm"
echo "   today's batches ($DAY), then as shanxi-province to confirm them and mark them paid;"
echo "   or with an administrator key from $SECRETS/admin-keys.plain.json"

if [ "$STAY" = 1 ]; then
  echo
  echo "== The services stay up: open the pages printed under \"The pages\" above =="
  echo "   residents' page  http://127.0.0.1:$APP__SERVER__PORT/app/   (phone size: the browser's device toolbar)"
  echo "   merchants' till  http://127.0.0.1:$REDEMPTION_PORT/till/"
  echo "   finance console  http://127.0.0.1:$CONSOLE_PORT/console/   (today's settlement waits to be confirmed)"
  echo "   logs: $STATE/issuance.log, $STATE/redemption.log, $STATE/reconciliation.log. Ctrl-C stops everything."
  wait "$ISSUANCE_PID" "$REDEMPTION_PID" "$CONSOLE_PID" || true
fi
