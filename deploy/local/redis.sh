#!/usr/bin/env bash
# A private Redis for the demo (never the system one): a master and its REPLICA, each with
# its own directory and append-only file, fsynced at every write (`appendfsync always`). The
# issuance service acknowledges a claim only once the replica holds it (`redis.ack_replicas`,
# default 1; README, "Redis durability: the replica barrier"), so an acknowledged claim
# survives kill -9 of the master and even the loss of the master's data directory.
#
#   deploy/local/redis.sh start|stop|status|url|promote
#
#   start    start the master, then the replica (each idempotent). Refuses to start a master
#            whose data directory is empty while the replica holds data: a replica resyncs
#            from its master, so an empty master would wipe it too. Run `promote` instead.
#   promote  recovery after the master lost its data directory (or died for good): the
#            replica's copy becomes the master's data again, on the master's port (the
#            services' URL does not change): the master is stopped if it still runs, the
#            replica is detached (REPLICAOF NO ONE) and shut down cleanly (its AOF fsynced),
#            its data is copied into the master's directory (the lost directory is kept
#            aside as <dir>.lost-<time> if anything is left of it), and both start again.
#            Then run `reconciliation check`; the persister drains the outbox it finds.
#
# Environment:
#   VP_REDIS_DIR           master's directory: AOF, pid file, log (default: <repo>/.local/redis)
#   VP_REDIS_PORT          master's TCP port on 127.0.0.1          (default: 56379)
#   VP_REDIS_REPLICA_DIR   replica's directory                     (default: $VP_REDIS_DIR-replica)
#   VP_REDIS_REPLICA_PORT  replica's TCP port                      (default: VP_REDIS_PORT - 1000)
#   VP_REDIS_REPLICA=0     no replica (then run the services with APP__REDIS__ACK_REPLICAS=0)
set -euo pipefail

REPO=$(cd "$(dirname "$0")/../.." && pwd)
DIR=${VP_REDIS_DIR:-$REPO/.local/redis}
PORT=${VP_REDIS_PORT:-56379}

say() { printf 'redis.sh: %s\n' "$*"; }
die() { printf 'redis.sh: error: %s\n' "$*" >&2; exit 1; }

usage() { echo "usage: $0 {start|stop|status|url|promote}" >&2; exit 2; }
[ $# -eq 1 ] || usage

case "$PORT" in '' | *[!0-9]*) die "VP_REDIS_PORT must be a number (got '$PORT')" ;; esac
RPORT=${VP_REDIS_REPLICA_PORT:-$((PORT - 1000))}
case "$RPORT" in '' | *[!0-9]*) die "VP_REDIS_REPLICA_PORT must be a number (got '$RPORT')" ;; esac
WITH_REPLICA=${VP_REDIS_REPLICA:-1}

URL="redis://127.0.0.1:$PORT"
if [ "$1" = url ]; then
  echo "$URL"
  exit 0
fi

case "$DIR" in /*) ;; *) DIR="$PWD/$DIR" ;; esac
RDIR=${VP_REDIS_REPLICA_DIR:-$DIR-replica}
case "$RDIR" in /*) ;; *) RDIR="$PWD/$RDIR" ;; esac

command -v redis-server >/dev/null 2>&1 || die "redis-server not found (run deploy/local/install-deps.sh)"
command -v redis-cli >/dev/null 2>&1 || die "redis-cli not found (run deploy/local/install-deps.sh)"

cli() { redis-cli -h 127.0.0.1 -p "$1" "${@:2}"; }
ping() { [ "$(cli "$1" ping 2>/dev/null)" = PONG ]; }
# Whether a directory holds Redis data (an append-only file or a snapshot).
has_data() { [ -n "$(find "$1" -maxdepth 2 \( -name '*.aof' -o -name '*.rdb' \) -size +0 2>/dev/null | head -n 1)" ]; }

# run_server PORT DIR [extra redis-server arguments…]
run_server() {
  local port=$1 dir=$2
  shift 2
  mkdir -p "$dir"
  redis-server \
    --daemonize yes \
    --port "$port" \
    --bind 127.0.0.1 \
    --dir "$dir" \
    --pidfile "$dir/redis.pid" \
    --logfile "$dir/redis.log" \
    --appendonly yes \
    --appendfsync always \
    --save "" \
    "$@" \
    || die "redis-server failed to start on port $port (log: $dir/redis.log)"
  for _ in $(seq 1 200); do
    if ping "$port"; then
      return 0
    fi
    sleep 0.05
  done
  tail -n 20 "$dir/redis.log" >&2 || true
  die "redis-server does not answer on port $port (log: $dir/redis.log)"
}

start_master() {
  if ping "$PORT"; then
    say "master already running on 127.0.0.1:$PORT"
    return 0
  fi
  if [ "$WITH_REPLICA" != 0 ] && ! has_data "$DIR" && has_data "$RDIR"; then
    die "the master's directory $DIR holds no data but the replica's $RDIR does: starting an empty master would make the replica resync from it and lose everything. Run '$0 promote' (README, \"Redis durability\"), or delete $RDIR too to start from nothing."
  fi
  say "starting the master on 127.0.0.1:$PORT (dir $DIR, appendonly yes, appendfsync always)"
  run_server "$PORT" "$DIR"
  say "ready: $URL"
}

start_replica() {
  [ "$WITH_REPLICA" != 0 ] || return 0
  if ping "$RPORT"; then
    say "replica already running on 127.0.0.1:$RPORT"
  else
    say "starting the replica on 127.0.0.1:$RPORT (dir $RDIR, replicaof 127.0.0.1 $PORT)"
    run_server "$RPORT" "$RDIR" --replicaof 127.0.0.1 "$PORT"
  fi
  for _ in $(seq 1 600); do
    if cli "$RPORT" info replication 2>/dev/null | grep -q '^master_link_status:up'; then
      say "replica in sync with the master"
      return 0
    fi
    sleep 0.05
  done
  die "the replica on port $RPORT did not sync with the master (log: $RDIR/redis.log)"
}

stop_one() {
  local port=$1
  if ! ping "$port"; then
    return 0
  fi
  # SHUTDOWN fsyncs the append-only file; the data is kept (no FLUSH).
  cli "$port" shutdown >/dev/null 2>&1 || true
  for _ in $(seq 1 100); do
    if ! ping "$port"; then
      say "stopped (port $port)"
      return 0
    fi
    sleep 0.05
  done
  die "redis on port $port did not stop"
}

status() {
  local rc=0
  if ping "$PORT"; then say "master running: $URL"; else say "master not running on port $PORT"; rc=3; fi
  if [ "$WITH_REPLICA" != 0 ]; then
    if ping "$RPORT"; then
      say "replica running on port $RPORT: $(cli "$RPORT" info replication | tr -d '\r' | grep -E '^(role|master_link_status):' | tr '\n' ' ')"
    else
      say "replica not running on port $RPORT"
      rc=3
    fi
  fi
  exit "$rc"
}

promote() {
  [ "$WITH_REPLICA" != 0 ] || die "no replica configured (VP_REDIS_REPLICA=0)"
  ping "$RPORT" || has_data "$RDIR" || die "the replica neither runs nor has data in $RDIR: nothing to promote from (the last resort is 'reconciliation rebuild')"
  # The master must not come back on its own while its data is being replaced.
  if ping "$PORT"; then
    say "stopping the master on port $PORT"
    cli "$PORT" shutdown nosave >/dev/null 2>&1 || true
    sleep 0.5
  fi
  if ping "$RPORT"; then
    say "detaching the replica (REPLICAOF NO ONE) and shutting it down cleanly"
    cli "$RPORT" replicaof no one >/dev/null
    stop_one "$RPORT"
  fi
  if [ -d "$DIR" ] && [ -n "$(ls -A "$DIR" 2>/dev/null)" ]; then
    local aside
    aside="$DIR.lost-$(date -u +%Y%m%dT%H%M%SZ)"
    say "keeping what is left of the master's directory in $aside"
    mv "$DIR" "$aside"
  fi
  mkdir -p "$DIR"
  # The replica's append-only directory (and snapshot, if any) become the master's.
  find "$RDIR" -mindepth 1 -maxdepth 1 \( -name 'appendonlydir' -o -name '*.aof' -o -name '*.rdb' \) \
    -exec cp -a {} "$DIR"/ \;
  start_master
  start_replica
  say "promoted: the master on $URL serves the replica's data; now run 'reconciliation check'"
}

case "$1" in
  start)
    start_master
    start_replica
    ;;
  stop)
    stop_one "$RPORT"
    stop_one "$PORT"
    ;;
  status) status ;;
  promote) promote ;;
  *) usage ;;
esac
