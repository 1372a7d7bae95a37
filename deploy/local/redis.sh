#!/usr/bin/env bash
# A private Redis for the demo (never the system one), with its append-only file on and
# fsynced at every write (`appendfsync always`): an acknowledged claim survives kill -9.
#
#   deploy/local/redis.sh start|stop|status|url
#
# Environment:
#   VP_REDIS_DIR   working directory: AOF, pid file, log   (default: <repo>/.local/redis)
#   VP_REDIS_PORT  TCP port on 127.0.0.1                   (default: 56379)
#
# `start` is idempotent (a Redis already answering on the port is reused).
set -euo pipefail

REPO=$(cd "$(dirname "$0")/../.." && pwd)
DIR=${VP_REDIS_DIR:-$REPO/.local/redis}
PORT=${VP_REDIS_PORT:-56379}

say() { printf 'redis.sh: %s\n' "$*"; }
die() { printf 'redis.sh: error: %s\n' "$*" >&2; exit 1; }

usage() { echo "usage: $0 {start|stop|status|url}" >&2; exit 2; }
[ $# -eq 1 ] || usage

case "$PORT" in '' | *[!0-9]*) die "VP_REDIS_PORT must be a number (got '$PORT')" ;; esac

URL="redis://127.0.0.1:$PORT"
if [ "$1" = url ]; then
  echo "$URL"
  exit 0
fi

case "$DIR" in /*) ;; *) DIR="$PWD/$DIR" ;; esac
PIDFILE="$DIR/redis.pid"
LOG="$DIR/redis.log"

command -v redis-server >/dev/null 2>&1 || die "redis-server not found (run deploy/local/install-deps.sh)"
command -v redis-cli >/dev/null 2>&1 || die "redis-cli not found (run deploy/local/install-deps.sh)"

ping() { [ "$(redis-cli -h 127.0.0.1 -p "$PORT" ping 2>/dev/null)" = PONG ]; }

start() {
  if ping; then
    say "already running on 127.0.0.1:$PORT"
    return 0
  fi
  mkdir -p "$DIR"
  say "starting on 127.0.0.1:$PORT (dir $DIR, appendonly yes, appendfsync always, log $LOG)"
  redis-server \
    --daemonize yes \
    --port "$PORT" \
    --bind 127.0.0.1 \
    --dir "$DIR" \
    --pidfile "$PIDFILE" \
    --logfile "$LOG" \
    --appendonly yes \
    --appendfsync always \
    --save "" \
    || die "redis-server failed to start (log: $LOG)"
  for _ in $(seq 1 200); do
    if ping; then
      say "ready: $URL"
      return 0
    fi
    sleep 0.05
  done
  tail -n 20 "$LOG" >&2 || true
  die "redis-server does not answer on port $PORT (log: $LOG)"
}

stop() {
  if ! ping; then
    say "not running on port $PORT"
    return 0
  fi
  redis-cli -h 127.0.0.1 -p "$PORT" shutdown nosave >/dev/null 2>&1 || true
  for _ in $(seq 1 100); do
    if ! ping; then
      say "stopped (port $PORT)"
      return 0
    fi
    sleep 0.05
  done
  die "redis on port $PORT did not stop"
}

status() {
  if ping; then
    say "running: $URL"
  else
    say "not running on port $PORT"
    exit 3
  fi
}

case "$1" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) usage ;;
esac
