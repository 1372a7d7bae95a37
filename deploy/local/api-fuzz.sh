#!/usr/bin/env bash
# API fuzzing: schemathesis (from PyPI, pinned, in a private virtualenv under .local/) runs
# every operation of the three OpenAPI documents (issuance, redemption, the finance console)
# in each auth mode — none, a resident's bearer token, an administrator's X-Api-Key, a
# terminal whose requests are signed by deploy/local/api_fuzz_hooks.py exactly as
# services/core/src/signing.rs says, and a signed-in officer of the console (a province and a
# city officer: the session cookie, and the CSRF token on writes, added by the same hooks).
# Checks: not_a_server_error, status_code_conformance, response_schema_conformance; on the
# console also unsupported_method, allow_header_conformance and error_envelope (the hooks':
# every 4xx and 5xx is the error envelope). An ERROR line in a service's log fails the run.
#
#   deploy/local/api-fuzz.sh [--short] [--max-examples N] [--seed N]
#                            [--issuance URL --redemption URL --console URL --secrets-dir DIR]
#
#   --short          a few examples per operation (the test command's run: 2-5 minutes)
#   --modes LIST     only these runs, e.g. issuance-admin,console-city (default: all)
#   --max-examples   examples per operation and mode (default 100; --short: 6)
#   --issuance/--redemption/--console/--secrets-dir
#                    fuzz services that already run (e.g. the demo's: http://127.0.0.1:8080,
#                    http://127.0.0.1:8081, http://127.0.0.1:8082, .local/secrets); they get a
#                    program, a campaign, a merchant, a terminal and one sale created by the
#                    script (the console's ids are those of the newest settled run it lists;
#                    without --console its runs are skipped). Without them the script starts
#                    the three services itself on free ports: debug binaries of target/ (built
#                    if missing; VP_BIN_DIR to use others), a fresh database vp_fuzz_* in the
#                    test cluster (VP_TEST_PG_URL, else deploy/local/postgres.sh with
#                    .local/test-pg), and a private throw-away redis-server; all removed after;
#                    the sale is settled (today, by `reconciliation settle`) so that the
#                    console's paths name a real run, batch, period and redemption.
#
# Reports (JUnit and the failing cases' reproductions) go to target/api-fuzz/<service>-<mode>/.
# Exit status: 0 when every run is clean; otherwise non-zero, and the failures are printed.
# The virtualenv needs PyPI once (pip install); without network that step fails loudly.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
cd "$REPO"

SCHEMATHESIS_VERSION=4.32.5
SHORT=0
MAX_EXAMPLES=""
SEED=""
ISSUANCE_URL=""
REDEMPTION_URL=""
CONSOLE_URL=""
SECRETS_DIR=""
MODES=issuance-none,issuance-resident,issuance-admin,redemption-none,redemption-admin,redemption-terminal,redemption-terminal-unpair
MODES=$MODES,console-none,console-province,console-city,console-sign-out
while [ $# -gt 0 ]; do
  case "$1" in
    --short) SHORT=1 ;;
    --max-examples) MAX_EXAMPLES=$2; shift ;;
    --seed) SEED=$2; shift ;;
    --modes) MODES=$2; shift ;;
    --issuance) ISSUANCE_URL=$2; shift ;;
    --redemption) REDEMPTION_URL=$2; shift ;;
    --secrets-dir) SECRETS_DIR=$2; shift ;;
    --console) CONSOLE_URL=$2; shift ;;
    -h | --help) sed -n '2,33p' "$0"; exit 0 ;;
    *) echo "api-fuzz.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
if [ -z "$MAX_EXAMPLES" ]; then
  if [ "$SHORT" = 1 ]; then MAX_EXAMPLES=6; else MAX_EXAMPLES=100; fi
fi

say() { printf 'api-fuzz.sh: %s\n' "$*"; }
die() { printf 'api-fuzz.sh: error: %s\n' "$*" >&2; exit 1; }

# --- schemathesis in its own virtualenv -------------------------------------------------
VENV="$REPO/.local/api-fuzz-venv"
ST="$VENV/bin/schemathesis"
if ! "$ST" --version 2>/dev/null | grep -q "$SCHEMATHESIS_VERSION"; then
  say "installing schemathesis $SCHEMATHESIS_VERSION into $VENV (needs PyPI)"
  command -v python3 >/dev/null 2>&1 || die "python3 not found (apt-get install python3 python3-venv)"
  # Debian's python3 makes virtualenvs only with python3-venv (ensurepip) installed.
  if ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
    as_root=(); [ "$(id -u)" -eq 0 ] || as_root=(sudo)
    "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null \
      || die "apt-get install python3-venv failed"
  fi
  rm -rf "$VENV"
  python3 -m venv "$VENV" || die "python3 -m venv failed (apt-get install python3-venv)"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION" \
    || die "pip install schemathesis==$SCHEMATHESIS_VERSION failed: is PyPI reachable?"
fi

# --- the services -----------------------------------------------------------------------
WORK=$(mktemp -d "${TMPDIR:-/tmp}/vp-api-fuzz.XXXXXX")
PIDS=()
REDIS_PID_FILE=""
DB_URL=""
PG_ADMIN=""
DB=""
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [ -n "$REDIS_PID_FILE" ] && [ -f "$REDIS_PID_FILE" ]; then
    kill "$(cat "$REDIS_PID_FILE")" 2>/dev/null || true
  fi
  if [ -n "$DB" ]; then
    psql "$PG_ADMIN" -XAtq -c "DROP DATABASE IF EXISTS \"$DB\" WITH (FORCE)" >/dev/null 2>&1 || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }

wait_ready() {
  local url=$1 name=$2 log=$3
  for _ in $(seq 1 300); do
    if curl -fsS "$url/readyz" >/dev/null 2>&1; then return 0; fi
    sleep 0.1
  done
  tail -n 30 "$log" >&2 || true
  die "$name did not become ready at $url (log above)"
}

STARTED=0
if [ -z "$ISSUANCE_URL" ] || [ -z "$REDEMPTION_URL" ]; then
  STARTED=1
  if [ -n "${VP_BIN_DIR:-}" ]; then
    BIN=$VP_BIN_DIR
  else
    BIN=$REPO/target/debug
    say "building the services (debug; up to date after the test command's build)"
    cargo build --locked -p issuance -p redemption -p reconciliation 2>&1 | tail -n 1
  fi
  command -v redis-server >/dev/null 2>&1 || die "redis-server not found (run deploy/local/install-deps.sh)"
  if [ -z "${VP_TEST_PG_URL:-}" ]; then
    export VP_PG_DIR="${VP_PG_DIR:-$REPO/.local/test-pg}" VP_PG_FSYNC="${VP_PG_FSYNC:-off}"
    deploy/local/postgres.sh start >/dev/null
    VP_TEST_PG_URL=$(deploy/local/postgres.sh url)
  fi
  PG_ADMIN=$VP_TEST_PG_URL
  DB="vp_fuzz_$(date +%s)_$$"
  psql "$PG_ADMIN" -XAtq -c "CREATE DATABASE \"$DB\"" >/dev/null
  DB_URL="${PG_ADMIN%/*}/$DB"

  REDIS_PORT=$(free_port)
  REDIS_PID_FILE="$WORK/redis.pid"
  redis-server --daemonize yes --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$WORK" \
    --pidfile "$REDIS_PID_FILE" --logfile "$WORK/redis.log" --save "" --appendonly no >/dev/null
  for _ in $(seq 1 100); do
    [ "$(redis-cli -p "$REDIS_PORT" ping 2>/dev/null)" = PONG ] && break
    sleep 0.05
  done

  SECRETS_DIR="$WORK/secrets"
  "$BIN/issuance" keygen --dir "$SECRETS_DIR" >/dev/null

  export APP__POSTGRES__URL="$DB_URL" APP__REDIS__URL="redis://127.0.0.1:$REDIS_PORT"
  export APP__SECRETS_DIR="$SECRETS_DIR" APP__REDIS__ACK_REPLICAS=0
  # One client (this script) sends everything: lift the per-IP, per-person and per-terminal
  # limits, or most answers would be 429s.
  export APP__RATE_LIMITS__IP_PER_SECOND=1000000 APP__RATE_LIMITS__IP_BURST=1000000
  export APP__LOG__LEVEL="warn,tracing_actix_web=error"
  ISSUANCE_PORT=$(free_port)
  APP__SERVER__PORT=$ISSUANCE_PORT APP__RATE_LIMITS__PERSON_PER_SECOND=1000000 \
    APP__RATE_LIMITS__PERSON_BURST=1000000 APP__DEV_IDP__ENABLED=true \
    "$BIN/issuance" serve >"$WORK/issuance.log" 2>&1 &
  PIDS+=($!)
  REDEMPTION_PORT=$(free_port)
  APP__SERVER__PORT=$REDEMPTION_PORT APP__RATE_LIMITS__TERMINAL_PER_SECOND=1000000 \
    APP__RATE_LIMITS__TERMINAL_BURST=1000000 \
    "$BIN/redemption" serve >"$WORK/redemption.log" 2>&1 &
  PIDS+=($!)
  ISSUANCE_URL="http://127.0.0.1:$ISSUANCE_PORT"
  REDEMPTION_URL="http://127.0.0.1:$REDEMPTION_PORT"
  wait_ready "$ISSUANCE_URL" issuance "$WORK/issuance.log"
  wait_ready "$REDEMPTION_URL" redemption "$WORK/redemption.log"
  # The console after the others: `serve` migrates too, and issuance already did.
  CONSOLE_PORT=$(free_port)
  APP__SERVER__PORT=$CONSOLE_PORT "$BIN/reconciliation" serve >"$WORK/reconciliation.log" 2>&1 &
  PIDS+=($!)
  CONSOLE_URL="http://127.0.0.1:$CONSOLE_PORT"
  wait_ready "$CONSOLE_URL" reconciliation "$WORK/reconciliation.log"
  say "issuance on $ISSUANCE_URL, redemption on $REDEMPTION_URL, console on $CONSOLE_URL (database $DB)"
fi
[ -n "$SECRETS_DIR" ] || die "--secrets-dir is needed with --issuance/--redemption"
BIN=${BIN:-${VP_BIN_DIR:-$REPO/target/debug}}

# --- credentials and a little data for the ids to hit ---------------------------------------
ADMIN_KEY=$(python3 -c 'import json,sys; print(next(a["key"] for a in json.load(open(sys.argv[1])) if a["role"]=="province"))' \
  "$SECRETS_DIR/admin-keys.plain.json")
CITY_KEY=$(python3 -c 'import json,sys; print(next(a["key"] for a in json.load(open(sys.argv[1])) if a.get("place")==140500))' \
  "$SECRETS_DIR/admin-keys.plain.json")
RESIDENT_TOKEN=$("$BIN/issuance" dev-idp mint --dir "$SECRETS_DIR" --person FUZZ0001 --home 140500 --level 3 | tail -n 1)
SEED_OUT=$("$VENV/bin/python" - "$ISSUANCE_URL" "$REDEMPTION_URL" "$ADMIN_KEY" "$CITY_KEY" "$RESIDENT_TOKEN" "$REPO/deploy/local" <<'EOF'
import datetime, json, secrets, sys, time, urllib.request, uuid
issuance, redemption, province, city, resident, hooks_dir = sys.argv[1:7]
sys.path.insert(0, hooks_dir)
from api_fuzz_hooks import sign

def post(base, path, key, body, headers=None):
    headers = headers or {"x-api-key": key}
    req = urllib.request.Request(base + path, data=json.dumps(body).encode(), method="POST",
                                 headers={"content-type": "application/json", **headers})
    try:
        with urllib.request.urlopen(req) as r:
            return json.load(r)
    except urllib.error.HTTPError as e:
        raise SystemExit(f"seeding {path}: {e.code} {e.read().decode()}")

def credit_code(n):
    chars = "0123456789ABCDEFGHJKLMNPQRTUWXY"
    weights = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28]
    head = f"91140500MA{n:07d}"
    total = sum(chars.index(c) * w for c, w in zip(head, weights))
    return head + chars[(31 - total % 31) % 31]

program = post(issuance, "/v1/admin/programs", province, {
    "name": "fuzz program", "funder_place": 140000, "province_ratio_bp": 5000,
    "pool": 100000000, "refund_policy": "restore"})
now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
campaign = post(issuance, "/v1/admin/campaigns", city, {
    "program_id": program["id"], "name": "fuzz campaign", "owner_place": 140500,
    "category": "catering", "rule": {"type": "threshold", "min_spend": 10000, "off": 2000},
    "stock": 1000, "per_person_limit": 5,
    "rounds": [{"round_no": 1, "starts_at": (now - datetime.timedelta(hours=1)).isoformat().replace("+00:00", "Z"),
                "quantity": 1000}],
    "validity": {"days_after_claim": 7}, "budget": 10000000,
    "eligibility": {"places": [], "min_real_name_level": 0}, "distribution": "claim"})
merchant = f"fuzz-{int(time.time())}"
post(redemption, "/v1/admin/merchants", city, {
    "id": merchant, "name": "fuzz merchant", "credit_code": credit_code(int(time.time()) % 10_000_000),
    "category": "catering", "city": 140500, "settlement_account": "ICBC-6222-0000"})
post(redemption, f"/v1/admin/merchants/{merchant}/approvals", city, {"program_id": program["id"]})
t = post(redemption, f"/v1/admin/merchants/{merchant}/terminals", city, {})
# One sale, for the console to settle and show: the resident claims a voucher and the
# terminal redeems its dynamic code.
bearer = {"authorization": f"Bearer {resident}"}
voucher = post(issuance, f"/v1/campaigns/{campaign['id']}/claims", None, {"claim_id": str(uuid.uuid4())}, bearer)
# The code is drawn once the record has the voucher (the persister writes it within moments).
req = urllib.request.Request(f"{issuance}/v1/me/vouchers/{voucher['voucher_id']}/code", headers=bearer)
for attempt in range(100):
    try:
        with urllib.request.urlopen(req) as r:
            code = json.load(r)["code"]
        break
    except urllib.error.HTTPError as e:
        if e.code != 404 or attempt == 99:
            raise SystemExit(f"seeding the code: {e.code} {e.read().decode()}")
        time.sleep(0.1)
body = json.dumps({"code": code, "order_amount_fen": 15000, "order_ref": merchant}).encode()
ts, nonce = int(time.time()), secrets.token_hex(16)
signed = {"x-terminal-key": t["key_id"], "x-timestamp": str(ts), "x-nonce": nonce,
          "idempotency-key": merchant,
          "x-signature": sign(t["secret"], "POST", "/v1/redemptions", ts, nonce, body)}
req = urllib.request.Request(redemption + "/v1/redemptions", data=body, method="POST",
                             headers={"content-type": "application/json", **signed})
try:
    with urllib.request.urlopen(req) as r:
        sale = json.load(r)
except urllib.error.HTTPError as e:
    raise SystemExit(f"seeding the sale: {e.code} {e.read().decode()}")
if sale.get("outcome") != "approved":
    raise SystemExit(f"seeding the sale: {sale}")
print(t["key_id"], t["secret"], sale["redemption_id"])
EOF
)
read -r TERMINAL_KEY TERMINAL_SECRET SALE_ID <<<"$SEED_OUT"
[ -n "$SALE_ID" ] || die "seeding did not give a terminal and a sale"

# The console: today's sale settled (the command line settles a day not yet over; the console
# would not), then sessions for a province and a city officer, and the ids its paths take.
CONSOLE_ENV=()
if [ -n "$CONSOLE_URL" ]; then
  if [ "$STARTED" = 1 ]; then
    DAY=$(TZ=Asia/Shanghai date +%F)
    APP__POSTGRES__URL="$DB_URL" "$BIN/reconciliation" settle --from "$DAY" --to "$DAY" \
      --actor api-fuzz --out "$WORK/settlement" >"$WORK/settle.log" 2>&1 \
      || { tail -n 20 "$WORK/settle.log" >&2; die "reconciliation settle failed"; }
  fi
  # NAME=VALUE lines for the hooks: a fresh session per officer run (the sign-out run ends
  # its own), and the ids of the newest settled run.
  CONSOLE_SEED=$(python3 - "$CONSOLE_URL" "$ADMIN_KEY" "$CITY_KEY" "$SALE_ID" <<'EOF'
import json, sys, urllib.request
console, province, city, sale = sys.argv[1:5]

def sign_in(key):
    req = urllib.request.Request(console + "/v1/session", data=json.dumps({"api_key": key}).encode(),
                                 method="POST", headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(req) as r:
            cookie = r.headers["set-cookie"].split(";", 1)[0].split("=", 1)[1]
            return cookie, json.load(r)["csrf_token"]
    except urllib.error.HTTPError as e:
        raise SystemExit(f"console sign-in: {e.code} {e.read().decode()}")

def get(path, session):
    req = urllib.request.Request(console + path, headers={"cookie": f"vp_console={session[0]}"})
    with urllib.request.urlopen(req) as r:
        return json.load(r)

sessions = {mode: sign_in(key) for mode, key in
            [("PROVINCE", province), ("CITY", city), ("SIGN_OUT", province)]}
for mode, (cookie, csrf) in sessions.items():
    print(f"VP_FUZZ_CONSOLE_{mode}={cookie}:{csrf}")
ids = {"id": sale, "name": "cities.csv"}
periods = get("/v1/periods", sessions["PROVINCE"])["periods"]
if periods and periods[0]["runs"]:
    ids["period"] = periods[0]["period"]
    ids["run_id"] = periods[0]["runs"][0]["run_id"]
    batches = get(f"/v1/runs/{ids['run_id']}", sessions["PROVINCE"])["batches"]
    if batches:
        ids["batch_id"] = batches[0]["batch_id"]
print("VP_FUZZ_CONSOLE_IDS=" + json.dumps(ids, separators=(",", ":")))
EOF
  ) || die "seeding the console failed"
  mapfile -t CONSOLE_ENV <<<"$CONSOLE_SEED"
  say "console: ${CONSOLE_ENV[-1]}"
fi

# --- the runs ------------------------------------------------------------------------------
OUT="$REPO/target/api-fuzz"
rm -rf "$OUT"
mkdir -p "$OUT"
export PYTHONPATH="$REPO/deploy/local${PYTHONPATH:+:$PYTHONPATH}"
export SCHEMATHESIS_HOOKS=api_fuzz_hooks
CHECKS=not_a_server_error,status_code_conformance,response_schema_conformance
ARGS=(--checks "$CHECKS" --max-examples "$MAX_EXAMPLES" --workers 2 --request-timeout 30
  --suppress-health-check all --no-color)
[ -n "$SEED" ] && ARGS+=(--seed "$SEED")
if [ "$SHORT" = 1 ]; then ARGS+=(--phases examples,coverage,fuzzing --no-shrink); fi

console_env() {
  local line
  for line in "${CONSOLE_ENV[@]}"; do
    case "$line" in "$1="*) printf '%s' "${line#*=}"; return 0 ;; esac
  done
}

failed=()
summary=()
run() {
  local service=$1 mode=$2 url=$3
  shift 3
  local dir="$OUT/$service-$mode" status=0
  case ",$MODES," in *",$service-$mode,"*) ;; *) return 0 ;; esac
  mkdir -p "$dir"
  say "== $service, auth: $mode =="
  "$ST" run "$url/openapi.json" --url "$url" "${ARGS[@]}" \
    --report junit,pytest --report-dir "$dir" "$@" >"$dir/output.txt" 2>&1 || status=$?
  tail -n 25 "$dir/output.txt"
  local cases
  cases=$(grep -Eo '[0-9]+ generated, [0-9]+ (passed|found)([^[:cntrl:]]*)' "$dir/output.txt" | tail -n 1 || true)
  summary+=("$service/$mode: ${cases:-no test cases} (exit $status)")
  [ "$status" -eq 0 ] || failed+=("$service/$mode")
}

# The console first, over the seeded record: its POST /v1/checks reads every campaign, and
# the issuance runs below create thousands with fuzzed stocks (the check's cost then is
# the check's, not the API's: see check.request_timeout_secs).
if [ -n "$CONSOLE_URL" ]; then
  # An officer's run: the hooks send the session cookie on every request and its CSRF token
  # on writes, and put the seeded ids into part of the generated paths. DELETE /v1/session
  # ends the session it is sent with, so it runs last, with a session of its own.
  # Three checks more here (the later --checks wins): a method the document does not give a
  # path answers 405 with `Allow`, listing what the document gives it; every 4xx is the
  # error envelope (error_envelope, in the hooks).
  console_run() {
    local mode=$1 session=$2
    shift 2
    VP_FUZZ_CONSOLE_SESSION=$session VP_FUZZ_CONSOLE_IDS=$(console_env VP_FUZZ_CONSOLE_IDS) \
      run console "$mode" "$CONSOLE_URL" \
      --checks "$CHECKS,unsupported_method,allow_header_conformance,error_envelope" "$@"
  }
  console_run none ""
  console_run province "$(console_env VP_FUZZ_CONSOLE_PROVINCE)" --exclude-name "DELETE /v1/session"
  console_run city "$(console_env VP_FUZZ_CONSOLE_CITY)" --exclude-name "DELETE /v1/session"
  console_run sign-out "$(console_env VP_FUZZ_CONSOLE_SIGN_OUT)" --include-name "DELETE /v1/session"
fi

VP_FUZZ_TERMINAL_KEY="" VP_FUZZ_TERMINAL_SECRET="" run issuance none "$ISSUANCE_URL"
run issuance resident "$ISSUANCE_URL" -H "Authorization: Bearer $RESIDENT_TOKEN"
run issuance admin "$ISSUANCE_URL" -H "X-Api-Key: $ADMIN_KEY"
run redemption none "$REDEMPTION_URL"
run redemption admin "$REDEMPTION_URL" -H "X-Api-Key: $CITY_KEY"
# POST /v1/terminal/unpair revokes the terminal's own key: every signed request after it is
# 401. It is fuzzed on its own, after the other terminal operations.
VP_FUZZ_TERMINAL_KEY=$TERMINAL_KEY VP_FUZZ_TERMINAL_SECRET=$TERMINAL_SECRET \
  run redemption terminal "$REDEMPTION_URL" --exclude-path /v1/terminal/unpair
VP_FUZZ_TERMINAL_KEY=$TERMINAL_KEY VP_FUZZ_TERMINAL_SECRET=$TERMINAL_SECRET \
  run redemption terminal-unpair "$REDEMPTION_URL" --include-path /v1/terminal/unpair

echo
say "summary (max $MAX_EXAMPLES examples per operation and mode; reports in $OUT):"
for line in "${summary[@]}"; do echo "  $line"; done
for log in issuance redemption reconciliation; do
  errors=$(grep -m 20 '"level":"ERROR"' "$WORK/$log.log" 2>/dev/null || true)
  if [ -n "$errors" ]; then
    say "$log logged errors (a client's request must never log at ERROR):"
    echo "$errors"
    failed+=("$log-log")
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  say "FAILED: ${failed[*]}"
  exit 1
fi
say "clean: no server error, every status documented, every response conforming"
