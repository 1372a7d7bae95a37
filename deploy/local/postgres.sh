#!/usr/bin/env bash
# A private PostgreSQL cluster for the demo and the tests (never the system one).
#
#   deploy/local/postgres.sh start|stop|status|url|port
#
# Environment:
#   VP_PG_DIR    the cluster's data directory   (default: <repo>/.local/pg)
#   VP_PG_PORT   TCP port on 127.0.0.1          (default: 55432), or `auto`: the port this
#                data directory's server runs on, else the one it used last if still free,
#                else the first free port from VP_PG_PORT_FROM (default 55433) upward; a
#                port where another data directory's server (another checkout's) answers is
#                never taken. So several checkouts can each run their own test cluster.
#   VP_PG_FSYNC  on|off; "off" also turns off synchronous_commit and full_page_writes —
#                fast and unsafe, for throw-away test clusters only   (default: on)
#
# Trust authentication for user `postgres` on 127.0.0.1 only. As root, the cluster runs
# as the `postgres` user. `start` is idempotent; settings are re-applied at every start.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/../.." && pwd)
PGDIR=${VP_PG_DIR:-$REPO/.local/pg}
PORT=${VP_PG_PORT:-55432}
FSYNC=${VP_PG_FSYNC:-on}

say() { printf 'postgres.sh: %s\n' "$*"; }
die() { printf 'postgres.sh: error: %s\n' "$*" >&2; exit 1; }

usage() { echo "usage: $0 {start|stop|status|url|port}" >&2; exit 2; }
[ $# -eq 1 ] || usage

case "$FSYNC" in on | off) ;; *) die "VP_PG_FSYNC must be 'on' or 'off' (got '$FSYNC')" ;; esac

# Make the data directory absolute (the server and pg_ctl run elsewhere).
case "$PGDIR" in /*) ;; *) PGDIR="$PWD/$PGDIR" ;; esac
LOG="$PGDIR/server.log"

# Whether anything listens on 127.0.0.1:$1 (a PostgreSQL or not).
listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# `auto`: the port of this data directory's server (its postmaster.pid names the port),
# else the port its settings name if nothing listens there, else the first free port from
# VP_PG_PORT_FROM upward. A port another server answers on is someone else's (another
# checkout's cluster, or anything else): skipped, never shared.
auto_port() {
  local from=${VP_PG_PORT_FROM:-55433} pid_port="" conf_port="" p
  case "$from" in '' | *[!0-9]*) die "VP_PG_PORT_FROM must be a number (got '$from')" ;; esac
  if [ -f "$PGDIR/postmaster.pid" ]; then
    pid_port=$(sed -n 4p "$PGDIR/postmaster.pid" 2>/dev/null || true)
    case "$pid_port" in '' | *[!0-9]*) pid_port="" ;; esac
  fi
  # Our own server, running: its port (a stale postmaster.pid names a port nobody answers
  # on, which is then free for us anyway).
  if [ -n "$pid_port" ] && listening "$pid_port"; then
    echo "$pid_port"
    return 0
  fi
  if [ -f "$PGDIR/vp.conf" ]; then
    conf_port=$(sed -n 's/^port = \([0-9][0-9]*\)$/\1/p' "$PGDIR/vp.conf" 2>/dev/null | head -1 || true)
  fi
  if [ -n "$conf_port" ] && ! listening "$conf_port"; then
    echo "$conf_port"
    return 0
  fi
  free_port_from "$from"
}

# The first port from $1 upward where nothing listens. 55434 is the benchmark cluster's
# (deploy/local/bench.sh), even while it is stopped.
free_port_from() {
  local p
  for p in $(seq "$1" $(($1 + 200))); do
    if [ "$p" != 55434 ] && ! listening "$p"; then
      echo "$p"
      return 0
    fi
  done
  die "no free port in $1..$(($1 + 200))"
}

AUTO=0
if [ "$PORT" = auto ]; then
  AUTO=1
  # Two checkouts starting at once must not pick the same free port: the pick and the start
  # run under one lock shared by every checkout on the machine.
  if [ "$1" = start ] && [ -z "${VP_PG_PORT_LOCKED:-}" ] && command -v flock >/dev/null 2>&1; then
    # -o: the server started below must not inherit (and hold) the lock.
    exec env VP_PG_PORT_LOCKED=1 flock -o "${TMPDIR:-/tmp}/vp-pg-auto-port.lock" "$0" "$@"
  fi
  PORT=$(auto_port)
fi
case "$PORT" in '' | *[!0-9]*) die "VP_PG_PORT must be a number or 'auto' (got '$PORT')" ;; esac

URL="postgres://postgres@127.0.0.1:$PORT/postgres"
case "$1" in
  url) echo "$URL"; exit 0 ;;
  port) echo "$PORT"; exit 0 ;;
esac

BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
[ -n "$BIN" ] && [ -x "$BIN/pg_ctl" ] \
  || die "PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin (run deploy/local/install-deps.sh)"

if [ -x "$BIN/pg_isready" ]; then
  PG_ISREADY="$BIN/pg_isready"
elif command -v pg_isready >/dev/null 2>&1; then
  PG_ISREADY=$(command -v pg_isready)
else
  die "pg_isready not found (run deploy/local/install-deps.sh)"
fi

# As root the server must run as an unprivileged user.
if [ "$(id -u)" -eq 0 ]; then
  RUN_AS=postgres
  id -u "$RUN_AS" >/dev/null 2>&1 || die "user '$RUN_AS' does not exist (install the postgresql package)"
  as_pg() { runuser -u "$RUN_AS" -- "$@"; }
else
  RUN_AS=$(id -un)
  as_pg() { "$@"; }
fi

pg_ctl() { as_pg "$BIN/pg_ctl" -D "$PGDIR" "$@"; }

running() { [ -f "$PGDIR/PG_VERSION" ] && pg_ctl status >/dev/null 2>&1; }

ready() { "$PG_ISREADY" -q -h 127.0.0.1 -p "$PORT" -U postgres -d postgres >/dev/null 2>&1; }

wait_ready() {
  for _ in $(seq 1 300); do
    if ready; then return 0; fi
    sleep 0.1
  done
  return 1
}

# Every directory above the data directory must be traversable by the server's user.
make_reachable() {
  local d
  d=$(dirname "$PGDIR")
  while [ "$d" != / ]; do
    if ! as_pg test -x "$d"; then
      say "making $d traversable for user $RUN_AS (chmod o+x)"
      chmod o+x "$d"
    fi
    d=$(dirname "$d")
  done
}

# The unix socket goes into the data directory unless the path is too long for a socket
# address (107 bytes), then into /tmp.
socket_dir() {
  local sock="$PGDIR/.s.PGSQL.$PORT"
  if [ ${#sock} -le 100 ]; then echo "$PGDIR"; else echo /tmp; fi
}

init_cluster() {
  mkdir -p "$PGDIR"
  if [ -n "$(ls -A "$PGDIR" 2>/dev/null)" ]; then
    die "$PGDIR is not empty but holds no cluster (no PG_VERSION); remove it or set VP_PG_DIR"
  fi
  if [ "$(id -u)" -eq 0 ]; then chown "$RUN_AS": "$PGDIR"; fi
  chmod 700 "$PGDIR"
  make_reachable
  say "initialising a new cluster in $PGDIR"
  local out
  if ! out=$(as_pg "$BIN/initdb" -D "$PGDIR" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 2>&1); then
    say "locale C.UTF-8 unavailable; falling back to locale C"
    rm -rf "${PGDIR:?}"/* "${PGDIR:?}"/.[!.]* 2>/dev/null || true
    out=$(as_pg "$BIN/initdb" -D "$PGDIR" -U postgres --auth=trust -E UTF8 --locale=C 2>&1) \
      || { printf '%s\n' "$out" >&2; die "initdb failed"; }
  fi
  # Our settings live in vp.conf, rewritten at every start.
  # shellcheck disable=SC2016 # $1 is expanded by the inner shell
  printf "\n# Settings of deploy/local/postgres.sh\ninclude_if_exists = 'vp.conf'\n" \
    | as_pg sh -c 'cat >> "$1"' sh "$PGDIR/postgresql.conf"
}

write_settings() {
  local sockdir durability
  sockdir=$(socket_dir)
  if [ "$FSYNC" = off ]; then
    durability="fsync = off
synchronous_commit = off
full_page_writes = off"
  else
    durability="fsync = on
synchronous_commit = on
full_page_writes = on"
  fi
  # shellcheck disable=SC2016 # $1 is expanded by the inner shell
  as_pg sh -c 'cat > "$1"' sh "$PGDIR/vp.conf" <<EOF
# Written by deploy/local/postgres.sh at every start; edits are overwritten.
listen_addresses = '127.0.0.1'
port = $PORT
unix_socket_directories = '$sockdir'
max_connections = 700
shared_buffers = 128MB
$durability
EOF
}

start() {
  if [ -f "$PGDIR/PG_VERSION" ]; then
    if [ "$(id -u)" -eq 0 ] && [ "$(stat -c %U "$PGDIR")" != "$RUN_AS" ]; then
      say "giving $PGDIR to user $RUN_AS"
      chown -R "$RUN_AS": "$PGDIR"
    fi
    make_reachable
  else
    init_cluster
  fi

  if running; then
    if wait_ready; then
      say "already running on 127.0.0.1:$PORT ($PGDIR)"
      return 0
    fi
    die "a server runs on $PGDIR but does not answer on port $PORT (a different VP_PG_PORT earlier? run '$0 stop' first)"
  fi

  if ready; then
    local other
    other=$(psql "$URL" -XAtq -c 'SHOW data_directory' 2>/dev/null || true)
    die "something else already answers on 127.0.0.1:$PORT${other:+ (the cluster in $other)}; choose another VP_PG_PORT, or VP_PG_PORT=auto"
  fi

  local tries=0
  while :; do
    write_settings
    say "starting on 127.0.0.1:$PORT (data $PGDIR, fsync $FSYNC, log $LOG)"
    as_pg touch "$LOG"
    if pg_ctl -l "$LOG" -w -t 60 start >/dev/null; then
      break
    fi
    # A port in the ephemeral range may be taken by a client connection's local end, which
    # no listening check sees: with `auto`, move on to the next free port.
    if [ "$AUTO" = 1 ] && [ "$tries" -lt 10 ] && tail -n 5 "$LOG" | grep -q "could not bind"; then
      tries=$((tries + 1))
      PORT=$(free_port_from $((PORT + 1)))
      URL="postgres://postgres@127.0.0.1:$PORT/postgres"
      say "that port is in use; trying $PORT"
      continue
    fi
    tail -n 20 "$LOG" >&2 || true
    die "the server did not start (log: $LOG)"
  done
  wait_ready || { tail -n 20 "$LOG" >&2 || true; die "the server does not answer on port $PORT"; }
  say "ready: $URL"
}

stop() {
  if running; then
    pg_ctl stop -m fast -w >/dev/null
    say "stopped ($PGDIR)"
  else
    say "not running ($PGDIR)"
  fi
}

status() {
  if running; then
    if ready; then
      say "running and accepting connections: $URL"
    else
      say "running ($PGDIR) but not answering on port $PORT"
    fi
  else
    say "not running ($PGDIR)"
    exit 3
  fi
}

case "$1" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) usage ;;
esac
