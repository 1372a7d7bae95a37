# shellcheck shell=bash
# Sourced by demo.sh and bench.sh: everything up to the services — packages, a private
# PostgreSQL and a private Redis (append-only file, appendfsync always), a fresh database,
# an empty Redis, the release build of the given packages, the dev secrets — and the
# settings every service reads (APP__POSTGRES__URL, APP__REDIS__URL, APP__SECRETS_DIR).
#
#   vp_stack_up NAME PG_DIR PG_PORT REDIS_DIR REDIS_PORT PACKAGE…
#
# Sets PG_ADMIN, DB, REDIS_URL, BIN and SECRETS for the caller. Needs REPO and STATE.

vp_stack_up() {
  local name=$1 pg_dir=$2 pg_port=$3 redis_dir=$4 redis_port=$5
  shift 5
  deploy/local/install-deps.sh
  export VP_PG_DIR="$pg_dir" VP_PG_PORT="$pg_port"
  export VP_REDIS_DIR="$redis_dir" VP_REDIS_PORT="$redis_port"
  deploy/local/postgres.sh start
  deploy/local/redis.sh start

  PG_ADMIN=$(deploy/local/postgres.sh url)
  DB=vouchers_${name}_$(date +%Y%m%d%H%M%S)
  psql -q "$PG_ADMIN" -c "CREATE DATABASE $DB" >/dev/null
  REDIS_URL=$(deploy/local/redis.sh url)
  # A fresh run each time: a new database and an empty Redis, whose append-only file is
  # rewritten so that it does not grow across runs (a rewrite mid-run would disturb a bench).
  redis-cli -u "$REDIS_URL" FLUSHALL >/dev/null
  redis-cli -u "$REDIS_URL" BGREWRITEAOF >/dev/null || true

  echo "== Building (release) =="
  local packages=()
  for p in "$@"; do packages+=(-p "$p"); done
  cargo build --release --locked "${packages[@]}" 2>&1 | tail -n 2
  BIN="$REPO/target/release"

  SECRETS="$STATE/secrets"
  if [ ! -f "$SECRETS/voucher-signing.json" ]; then
    "$BIN/issuance" keygen --dir "$SECRETS"
  fi
  # Secrets generated before terminal secrets were sealed lack the key-encryption key.
  if [ ! -f "$SECRETS/terminal-kek.json" ] && [ -x "$BIN/redemption" ]; then
    APP__SECRETS_DIR="$SECRETS" "$BIN/redemption" kek add --current
  fi

  export APP__POSTGRES__URL="${PG_ADMIN%/*}/$DB"
  export APP__REDIS__URL="$REDIS_URL"
  export APP__SECRETS_DIR="$SECRETS"
}
