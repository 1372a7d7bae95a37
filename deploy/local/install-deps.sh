#!/usr/bin/env bash
# Installs what the local demo and the tests need, and only what is missing:
#   PostgreSQL (server: initdb/pg_ctl under /usr/lib/postgresql/*/bin; client: psql, and
#   pgbench for the benchmark's baselines), redis-server, redis-cli and redis-benchmark (a
#   baseline too), curl, jq, pkg-config, a C compiler (for `ring`),
#   Node.js and npm (the pages are built with them), Debian's Chromium and ChromeDriver
#   (the browser tests; browsers cannot be downloaded here), a CJK font (so screenshots of the
#   pages show Chinese), and a Rust toolchain (rustup, stable) when no `cargo` is found.
# Debian/Ubuntu (apt-get). Runs as root, or through sudo when not root.
# Idempotent: when everything is present it prints one line and does nothing.
set -euo pipefail

say() { printf 'install-deps: %s\n' "$*"; }
die() { printf 'install-deps: error: %s\n' "$*" >&2; exit 1; }

missing=()

pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
if [ -z "$pg_bin" ] || [ ! -x "$pg_bin/initdb" ] || [ ! -x "$pg_bin/pg_ctl" ]; then
  missing+=(postgresql)
fi
command -v psql >/dev/null 2>&1 || missing+=(postgresql-client)
command -v pgbench >/dev/null 2>&1 || missing+=(postgresql-client)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v redis-cli >/dev/null 2>&1 || missing+=(redis-tools)
command -v redis-benchmark >/dev/null 2>&1 || missing+=(redis-tools)
command -v curl >/dev/null 2>&1 || missing+=(curl)
command -v jq >/dev/null 2>&1 || missing+=(jq)
command -v pkg-config >/dev/null 2>&1 || missing+=(pkg-config)
command -v cc >/dev/null 2>&1 || missing+=(gcc libc6-dev)
command -v runuser >/dev/null 2>&1 || missing+=(util-linux)
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
[ -e /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ] || missing+=(fonts-wqy-microhei)

if [ ${#missing[@]} -gt 0 ]; then
  # De-duplicate, keep order.
  declare -A seen=()
  pkgs=()
  for p in "${missing[@]}"; do
    if [ -z "${seen[$p]:-}" ]; then seen[$p]=1; pkgs+=("$p"); fi
  done
  command -v apt-get >/dev/null 2>&1 \
    || die "missing ${pkgs[*]} and apt-get is not available; install them by hand"
  if [ "$(id -u)" -eq 0 ]; then
    as_root=()
  elif command -v sudo >/dev/null 2>&1; then
    as_root=(sudo)
  else
    die "missing ${pkgs[*]}; run this script as root (sudo is not available)"
  fi
  say "installing: ${pkgs[*]}"
  "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "${pkgs[@]}" >/dev/null
  say "installed: ${pkgs[*]}"
fi

# Check the result (an install can succeed without giving what we need).
pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
[ -n "$pg_bin" ] && [ -x "$pg_bin/initdb" ] && [ -x "$pg_bin/pg_ctl" ] \
  || die "initdb/pg_ctl not found under /usr/lib/postgresql/*/bin"
for c in psql pgbench redis-server redis-cli redis-benchmark curl jq node npm chromium chromedriver; do
  command -v "$c" >/dev/null 2>&1 || die "$c is still missing"
done

# Rust: the workspace needs a recent stable toolchain (Debian's rustc is too old), so use
# rustup when no cargo is found. The usual location is ~/.cargo/bin.
if ! command -v cargo >/dev/null 2>&1; then
  if [ -x "${CARGO_HOME:-$HOME/.cargo}/bin/cargo" ]; then
    say "cargo is in ${CARGO_HOME:-$HOME/.cargo}/bin (not in PATH); the scripts add it"
  else
    say "installing the Rust toolchain with rustup (stable, minimal profile)"
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs \
      | sh -s -- -y --profile minimal --default-toolchain stable >/dev/null
    say "installed $("${CARGO_HOME:-$HOME/.cargo}/bin/cargo" --version)"
  fi
fi

if [ ${#missing[@]} -eq 0 ]; then
  say "all present (PostgreSQL $(basename "$(dirname "$pg_bin")"), Redis $(redis-server --version | sed -n "s/.*v=\([0-9.]*\).*/\1/p"))"
fi
