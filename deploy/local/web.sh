#!/usr/bin/env bash
# Builds the pages (services/web): installs the locked npm packages, type-checks the
# TypeScript (strict), and bundles both pages into services/web/dist, printing the gzipped
# size of each page's JavaScript. The services serve dist/resident at /app/ and
# dist/merchant at /till/. Used by demo.sh, test.sh and bench.sh.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
cd "$REPO/services/web"
command -v npm >/dev/null 2>&1 || { echo "web.sh: error: npm not found (run deploy/local/install-deps.sh)" >&2; exit 1; }
# The lockfile decides every version; skip the install when it has not changed since the last.
stamp=node_modules/.vp-lock.sha256
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  npm ci --no-audit --no-fund --loglevel=error
  echo "$want" > "$stamp"
fi
npm run --silent typecheck
npm run --silent build
