#!/usr/bin/env bash
# The README's test command: every test of the workspace — unit, property, and the system
# tests that run the real services against real Redis and PostgreSQL.
#
#   deploy/local/test.sh [extra `cargo test` arguments, e.g. -- store_]
#
# Installs what is missing, starts a private throw-away PostgreSQL cluster (fsync off) in
# .local/test-pg on port ${VP_TEST_PG_PORT:-auto} (auto: the port this checkout's cluster
# already runs on, else the first free one from 55433 up — never another checkout's), builds and type-checks the pages
# (services/web), builds the binaries the system tests spawn, and runs
# `cargo test --workspace` (the browser tests drive Debian's Chromium through ChromeDriver;
# their screenshots go to target/browser-artifacts/). Each test starts its own redis-server and
# creates its own database (vp_*) in that cluster; leftovers of earlier runs are dropped.
# The cluster keeps running afterwards (the next run starts faster); stop it with
#   VP_PG_DIR=.local/test-pg VP_PG_PORT=auto deploy/local/postgres.sh stop
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
cd "$REPO"
started=$(date +%s)

deploy/local/install-deps.sh

# A toolchain installed by rustup lives in ~/.cargo/bin, which may not be in PATH yet.
if ! command -v cargo >/dev/null 2>&1; then
  export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
fi
command -v cargo >/dev/null 2>&1 || { echo "test.sh: error: cargo not found" >&2; exit 1; }

export VP_PG_DIR="$REPO/.local/test-pg"
export VP_PG_PORT="${VP_TEST_PG_PORT:-auto}"
export VP_PG_FSYNC=off
deploy/local/postgres.sh start
VP_TEST_PG_URL=$(deploy/local/postgres.sh url)
export VP_TEST_PG_URL
echo "test.sh: VP_TEST_PG_URL=$VP_TEST_PG_URL"

# Drop the databases earlier runs left behind (best effort).
leftovers=$(psql "$VP_TEST_PG_URL" -XAtq -c \
  "SELECT datname FROM pg_database WHERE datname LIKE 'vp\_%'" 2>/dev/null || true)
if [ -n "$leftovers" ]; then
  n=0
  while IFS= read -r db; do
    [ -n "$db" ] || continue
    if psql "$VP_TEST_PG_URL" -XAtq -c "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null 2>&1; then
      n=$((n + 1))
    fi
  done <<<"$leftovers"
  echo "test.sh: dropped $n test database(s) left by earlier runs"
fi

echo "== the pages: npm ci, typecheck, build (services/web) =="
deploy/local/web.sh
export VP_WEB_DIST="$REPO/services/web/dist"

echo "== cargo build --workspace --bins =="
cargo build --workspace --bins --locked

echo "== cargo test --workspace =="
status=0
# --no-fail-fast: run every test binary and report every failure, not just the first.
cargo test --workspace --locked --no-fail-fast "$@" || status=$?

# --- API fuzzing, short (helper step; README "API fuzzing") ---------------------------------
# schemathesis against both services' OpenAPI documents in every auth mode, a few examples per
# operation (about two minutes). Its first run installs schemathesis from PyPI into
# .local/api-fuzz-venv: without network that step fails loudly, and so does this run. Skipped
# when the run is filtered (extra arguments), like a developer's partial run.
if [ $# -eq 0 ]; then
  echo "== API fuzzing (short): deploy/local/api-fuzz.sh --short =="
  deploy/local/api-fuzz.sh --short || status=$?
fi

elapsed=$(($(date +%s) - started))
if [ "$status" -eq 0 ]; then
  printf 'test.sh: all tests passed in %dm%02ds\n' $((elapsed / 60)) $((elapsed % 60))
else
  printf 'test.sh: tests FAILED (exit %d) after %dm%02ds\n' "$status" $((elapsed / 60)) $((elapsed % 60))
fi
exit "$status"
