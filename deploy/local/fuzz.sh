#!/usr/bin/env bash
# Coverage-guided fuzzing of the parsers and verifiers that take hostile input (issue 13):
# the voucher token, the dynamic code, the identity token, the terminal request signature,
# the bulk-issuance CSV and the campaign JSON body. AFL++ through cargo-afl, on the stable
# toolchain. Targets and oracles: tests/fuzz/src/lib.rs.
#
#   deploy/local/fuzz.sh [--seconds N] [--execs N] [--jobs N] [target …]
#
#   --seconds N   stop each target after N seconds (default 60)
#   --execs N     or once it has run N executions (e.g. 10000000)
#   --jobs N      fuzz N targets at a time (default 1; the machine has 2 cores)
#   --collect-only  do not fuzz: summarise the last run and add its finds to the corpora
#   FUZZ_TARGET_DIR   where the instrumented build goes (default target/afl)
#
# Installs cargo-afl (crates.io) and builds AFL++ on first use, seeds each corpus with valid
# inputs (fuzz-seeds), fuzzes, then adds what AFL++ found that reaches new coverage to
# tests/fuzz/corpus/<target>/ (commit it: `cargo test -p vp-fuzz` replays every corpus input,
# and the test command runs that). Prints executions, paths and crashes per target and writes
# them to .local/fuzz/summary.md. A crash is saved in .local/fuzz/<target>/default/crashes/:
# replay it with `cargo test -p vp-fuzz` after copying it into the corpus.
set -euo pipefail
SECONDS_PER=60
EXECS=""
JOBS=1
COLLECT_ONLY=0
TARGETS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) SECONDS_PER="$2"; shift 2 ;;
    --execs) EXECS="$2"; shift 2 ;;
    --jobs) JOBS="$2"; shift 2 ;;
    --collect-only) COLLECT_ONLY=1; shift ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) TARGETS+=("$1"); shift ;;
  esac
done
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(token code identity signature csv json)
REPO=$(cd "$(dirname "$0")/../.." && pwd)
cd "$REPO"
if ! command -v cargo >/dev/null 2>&1; then
  export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
fi

OUT="$REPO/.local/fuzz"
TARGETS_TO_FUZZ=("${TARGETS[@]}")
mkdir -p "$OUT"
# cargo-afl's version follows the afl crate's in tests/fuzz/Cargo.lock (the workspace lock).
AFL_VERSION=$(awk '/^name = "afl"$/ {getline; gsub(/"/, "", $3); print $3; exit}' Cargo.lock)
if [ "$(cargo afl --version 2>/dev/null | awk '{print $2}')" != "$AFL_VERSION" ]; then
  echo "fuzz.sh: installing cargo-afl $AFL_VERSION"
  cargo install cargo-afl --locked --version "$AFL_VERSION"
fi
built="$OUT/.afl-built-$AFL_VERSION-$(rustc --version | cut -d' ' -f2)"
if [ ! -f "$built" ]; then
  echo "fuzz.sh: building AFL++ (once)"
  cargo afl config --build --force
  touch "$built"
fi
CORPUS="$REPO/tests/fuzz/corpus"
cargo run -q -p vp-fuzz --bin fuzz-seeds -- "$CORPUS"
# Instrumented builds get their own target directory: they would otherwise replace the
# ordinary release build of the services (different compiler flags).
TDIR="${FUZZ_TARGET_DIR:-$REPO/target/afl}"
echo "fuzz.sh: building the targets (cargo afl build --release, in $TDIR; the first build takes minutes)"
cargo afl build --release -q -p vp-fuzz --features afl --target-dir "$TDIR"

export AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_NO_UI=1 AFL_QUIET=1
fuzz_one() {
  local t="$1"
  local stop=(-V "$SECONDS_PER")
  [ -z "$EXECS" ] || stop+=(-E "$EXECS")
  rm -rf "$OUT/$t"
  cargo afl fuzz "${stop[@]}" -i "$CORPUS/$t" -o "$OUT/$t" -- "$TDIR/release/fuzz-$t" >"$OUT/$t.log" 2>&1 || true
}
running=0
[ "$COLLECT_ONLY" = 0 ] || TARGETS_TO_FUZZ=()
for t in "${TARGETS_TO_FUZZ[@]}"; do
  echo "fuzz.sh: fuzzing $t (${SECONDS_PER}s${EXECS:+ or $EXECS executions})"
  fuzz_one "$t" &
  running=$((running + 1))
  if [ "$running" -ge "$JOBS" ]; then wait -n || true; running=$((running - 1)); fi
done
wait || true

summary="$OUT/summary.md"
{
  echo "| target | executions | execs/s | corpus (paths) | crashes | hangs |"
  echo "|---|--:|--:|--:|--:|--:|"
} > "$summary"
status=0
for t in "${TARGETS[@]}"; do
  stats="$OUT/$t/default/fuzzer_stats"
  if [ ! -f "$stats" ]; then
    echo "fuzz.sh: $t did not run (see $OUT/$t.log)" >&2
    status=1
    continue
  fi
  get() { awk -F' *: *' -v k="$1" '$1 == k {print $2}' "$stats"; }
  crashes=$(get saved_crashes); crashes=${crashes:-$(get unique_crashes)}
  hangs=$(get saved_hangs); hangs=${hangs:-$(get unique_hangs)}
  echo "| $t | $(get execs_done) | $(get execs_per_sec) | $(get corpus_count) | $crashes | $hangs |" >> "$summary"
  [ "${crashes:-0}" = 0 ] || status=1
  # Keep what reaches new coverage (AFL++'s queue), minimised by afl-cmin when it works.
  queue="$OUT/$t/default/queue"
  if [ -d "$queue" ]; then
    min="$OUT/$t.min"
    rm -rf "$min"
    if cargo afl cmin -i "$queue" -o "$min" -- "$TDIR/release/fuzz-$t" >/dev/null 2>&1; then
      src="$min"
    else
      src="$queue"
    fi
    for f in "$src"/id:*; do
      [ -f "$f" ] || continue
      case "$f" in *orig:*) continue ;; esac   # an input of the corpus itself
      dest="$CORPUS/$t/$(sha256sum "$f" | cut -c1-16)"
      [ -e "$dest" ] || cp "$f" "$dest"
    done
  fi
done
cat "$summary"
exit "$status"
