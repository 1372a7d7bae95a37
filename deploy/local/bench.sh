#!/usr/bin/env bash
# The standard benchmark in one command (README, "Performance"): a private PostgreSQL
# (fsync on) and Redis (append-only file, appendfsync always) of its own, a fresh database
# and an empty Redis, the release build, the issuance and redemption services — then
# `bench standard`: the HTTP rush at 512 connections, the same in the open loop at 10,000
# requests/s, and the baselines on the same PostgreSQL and Redis — the service's claim script
# straight at Redis, a minimal claim script via redis-benchmark (swept over -c/-P), the claim
# as one PostgreSQL transaction (swept over 16/32/64/512 connections, the best kept), the
# minimal durable redemption via pgbench (swept over 16/32/64 clients) —, the checkout (128
# signed terminals redeeming) and the mixed run (a rush while terminals redeem), all on this
# machine. Reports go to loadtest/reports/<name>.{json,md,png}, and the README's benchmark
# tables are rendered from the JSON (`bench readme`; loadtest/reports/LATEST names the
# report). Exits non-zero if an invariant broke. About 6–8 minutes on 2 cores once built.
#
#   deploy/local/bench.sh [bench standard options, e.g. --rush-stock 50000 --redis-stock 1000000]
#   deploy/local/bench.sh replica-cost [bench rush options, e.g. --stock 20000 --concurrency 256]
#   deploy/local/bench.sh checkout [bench checkout options, e.g. --vouchers 20000 --checkout-max-secs 15]
#   deploy/local/bench.sh rush [bench rush options, e.g. --stock 50000 --concurrency 512]
#
# Redis runs as a master and a replica (deploy/local/redis.sh); the issuance service
# acknowledges a claim once the replica holds it (redis.ack_replicas, default 1).
# `replica-cost` measures what that costs: the same HTTP rush four times on the same stack,
# alternating APP__REDIS__ACK_REPLICAS=0 (acknowledged by the master alone) and 1 (the
# replica barrier), and prints the four headlines (README, "Redis durability").
#
# `checkout` runs the checkout on its own (128 terminals, closed loop, the standard mix) on the
# same stack, to measure a checkout lever quickly; it prints the run's JSON report. `rush` does
# the same for the HTTP rush (e.g. with APP__SERVER__WORKERS=1 to try a lever).
#
# Environment: VP_BENCH_PG_PORT (55434), VP_BENCH_REDIS_PORT (56380; its replica on the port
# 1000 below), VP_BENCH_ISSUANCE_PORT (18080), VP_BENCH_REDEMPTION_PORT (18081) — its own
# instances, so a demo can run beside it (other PostgreSQL/Redis ports: other data
# directories and logs under .local/, so two benches can run side by side); VP_BENCH_NAME
# (report name); service settings as APP__… variables (e.g. APP__SERVER__WORKERS=1) to try
# a lever — they are recorded in the log only, so name the report after the lever;
# VP_BENCH_REDEMPTION_ENV: extra VAR=value settings for the redemption service only (e.g.
# "APP__POSTGRES__MAX_CONNECTIONS=32"); VP_BENCH_README=0 leaves the README as it is (a
# lever's run that should not become the README's figures).
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
cd "$REPO"
STATE="$REPO/.local"
mkdir -p "$STATE"

# shellcheck source=deploy/local/stack.sh
. deploy/local/stack.sh
PG_PORT=${VP_BENCH_PG_PORT:-55434}
REDIS_PORT=${VP_BENCH_REDIS_PORT:-56380}
# Other ports are other instances: their data directories and logs are named after the
# ports, so a second bench beside the default one shares no file with it.
TAG=""
if [ "$PG_PORT:$REDIS_PORT" != 55434:56380 ]; then TAG="-$PG_PORT-$REDIS_PORT"; fi
vp_stack_up bench "$STATE/bench-pg$TAG" "$PG_PORT" "$STATE/bench-redis$TAG" \
  "$REDIS_PORT" issuance redemption loadtest

export APP__SERVER__PORT="${VP_BENCH_ISSUANCE_PORT:-18080}"
# The load comes from one address, and residents claim from two phones at once.
export APP__RATE_LIMITS__IP_PER_SECOND=10000000 APP__RATE_LIMITS__IP_BURST=10000000
export APP__LOG__FORMAT=json APP__LOG__LEVEL=${APP__LOG__LEVEL:-warn,tracing_actix_web=error}

"$BIN/issuance" migrate

if [ "${1:-}" = replica-cost ]; then
  shift
  # A short run by default; any option given replaces these.
  if [ $# -eq 0 ]; then RUSH_ARGS=(--stock 20000 --concurrency 256); else RUSH_ARGS=("$@"); fi
  trap 'kill "${ISSUANCE_PID:-}" 2>/dev/null || true; psql -q "$PG_ADMIN" -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true' EXIT
  SUMMARY=""
  for ACK in 0 1 0 1; do
    APP__REDIS__ACK_REPLICAS=$ACK "$BIN/issuance" serve > "$STATE/issuance-bench$TAG-ack$ACK.log" 2>&1 &
    ISSUANCE_PID=$!
    for _ in $(seq 1 200); do
      curl -fsS "http://127.0.0.1:$APP__SERVER__PORT/readyz" >/dev/null 2>&1 && break
      sleep 0.1
    done
    echo "== rush with redis.ack_replicas=$ACK (issuance pid $ISSUANCE_PID): bench rush ${RUSH_ARGS[*]} =="
    "$BIN/bench" rush --issuance "http://127.0.0.1:$APP__SERVER__PORT" --secrets-dir "$SECRETS" \
      --redis-url "$REDIS_URL" --pg-url "$APP__POSTGRES__URL" --issuance-pid "$ISSUANCE_PID" \
      "${RUSH_ARGS[@]}" > "$STATE/bench$TAG-ack$ACK.json" 2> "$STATE/bench$TAG-ack$ACK.err" || {
      tail -n 20 "$STATE/bench$TAG-ack$ACK.err" >&2
      exit 1
    }
    LINE=$(grep -E 'claims/s' "$STATE/bench$TAG-ack$ACK.err" | tail -n 1)
    echo "$LINE"
    SUMMARY+="ack_replicas=$ACK  $LINE"$'\n'
    kill "$ISSUANCE_PID"
    wait "$ISSUANCE_PID" 2>/dev/null || true
  done
  echo "== replica barrier cost ($(nproc) cores, load generator on the same machine) =="
  printf '%s' "$SUMMARY"
  exit 0
fi

"$BIN/issuance" serve > "$STATE/issuance-bench$TAG.log" 2>&1 &
ISSUANCE_PID=$!
# The redemption service: same database, Redis and secrets; its own port. 128 terminals
# behind one address redeem as fast as they can, so both of its rate limits are lifted.
REDEMPTION_PORT=${VP_BENCH_REDEMPTION_PORT:-18081}
# shellcheck disable=SC2086 # VP_BENCH_REDEMPTION_ENV is a list of VAR=value words
env APP__SERVER__PORT="$REDEMPTION_PORT" \
  APP__RATE_LIMITS__TERMINAL_PER_SECOND=10000000 APP__RATE_LIMITS__TERMINAL_BURST=10000000 \
  ${VP_BENCH_REDEMPTION_ENV:-} \
  "$BIN/redemption" serve > "$STATE/redemption-bench$TAG.log" 2>&1 &
REDEMPTION_PID=$!
cleanup() {
  kill "$ISSUANCE_PID" "$REDEMPTION_PID" 2>/dev/null || true
  wait "$ISSUANCE_PID" "$REDEMPTION_PID" 2>/dev/null || true
  psql -q "$PG_ADMIN" -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true
}
trap cleanup EXIT
echo "== issuance on :$APP__SERVER__PORT (pid $ISSUANCE_PID, log $STATE/issuance-bench$TAG.log) =="
echo "== redemption on :$REDEMPTION_PORT (pid $REDEMPTION_PID, log $STATE/redemption-bench$TAG.log) ${VP_BENCH_REDEMPTION_ENV:-} =="
env | grep '^APP__' | grep -v -E 'URL|SECRET' | sort | sed 's/^/   /'

if [ "${1:-}" = rush ]; then
  shift
  "$BIN/bench" rush --issuance "http://127.0.0.1:$APP__SERVER__PORT" --secrets-dir "$SECRETS" \
    --redis-url "$REDIS_URL" --pg-url "$APP__POSTGRES__URL" --issuance-pid "$ISSUANCE_PID" "$@"
  exit $?
fi

if [ "${1:-}" = checkout ]; then
  shift
  "$BIN/bench" checkout --issuance "http://127.0.0.1:$APP__SERVER__PORT" --secrets-dir "$SECRETS" \
    --redis-url "$REDIS_URL" --pg-url "$APP__POSTGRES__URL" --issuance-pid "$ISSUANCE_PID" \
    --redemption "http://127.0.0.1:$REDEMPTION_PORT" --redemption-pid "$REDEMPTION_PID" "$@"
  exit $?
fi

NAME=${VP_BENCH_NAME:-standard-$(date -u +%Y%m%dT%H%M%SZ)}
"$BIN/bench" standard --name "$NAME" --reports-dir "$REPO/loadtest/reports" \
  --issuance "http://127.0.0.1:$APP__SERVER__PORT" --secrets-dir "$SECRETS" \
  --redis-url "$REDIS_URL" --pg-url "$APP__POSTGRES__URL" --issuance-pid "$ISSUANCE_PID" \
  --baseline-redis-url "$REDIS_URL" --pg-admin-url "$PG_ADMIN" \
  --redemption "http://127.0.0.1:$REDEMPTION_PORT" --redemption-pid "$REDEMPTION_PID" "$@"
# Every invariant held (bench exits non-zero otherwise): the README shows this run.
if [ "${VP_BENCH_README:-1}" != 0 ]; then
  "$BIN/bench" readme --report "$REPO/loadtest/reports/$NAME.json" --readme "$REPO/README.md"
fi
