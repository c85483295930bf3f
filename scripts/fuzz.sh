#!/usr/bin/env bash
# Runs every fuzz target of fuzz/ briefly, seeded from the committed corpus
# (fuzz/corpus/<target>/, read only here: new inputs go to a scratch directory).
# Installs the nightly toolchain and cargo-fuzz when missing. Fails on the first crash,
# leak or timeout; libFuzzer leaves the input in fuzz/artifacts/<target>/.
#
# Usage: bash scripts/fuzz.sh [seconds per target]   (default 30: seven targets in 3.5 min)
# Longer runs, one target: cd fuzz && cargo +nightly fuzz run message -- -max_total_time=600
set -euo pipefail
cd "$(dirname "$0")/.."
PER_TARGET=${1:-${WXGATE_FUZZ_SECONDS:-30}}

if ! cargo +nightly --version >/dev/null 2>&1; then
  echo "== installing the nightly toolchain (cargo-fuzz needs it)"
  rustup toolchain install nightly --profile minimal
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  echo "== installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi

cd fuzz
echo "== cargo fuzz build"
cargo +nightly fuzz build -O
SCRATCH=$(mktemp -d)
trap 'rm -rf "$SCRATCH"' EXIT
summary=()
for target in $(cargo +nightly fuzz list); do
  echo "== fuzz $target for ${PER_TARGET}s"
  mkdir -p "corpus/$target" "$SCRATCH/$target"
  log="$SCRATCH/$target.log"
  case "$target" in
    service_reply) dict=dict/json.dict ;;
    json_push) dict=dict/json_push.dict ;;
    config) dict=dict/toml.dict ;;
    *) dict=dict/xml.dict ;;
  esac
  if ! cargo +nightly fuzz run -O "$target" "$SCRATCH/$target" "corpus/$target" -- \
      -max_total_time="$PER_TARGET" -timeout=10 -rss_limit_mb=2048 -dict="$dict" \
      >"$log" 2>&1; then
    tail -n 60 "$log" >&2
    echo "fuzz target $target failed: the input is in fuzz/artifacts/$target/; add it as a named test in crates/wxgate-proto/tests/regression.rs (or the binary's tests) and fix it" >&2
    exit 1
  fi
  runs=$(grep -Eo '^Done [0-9]+ runs' "$log" | tail -n 1 | grep -Eo '[0-9]+' || echo "?")
  summary+=("$target: $runs executions in ${PER_TARGET}s")
done
echo "== fuzz summary"
printf '%s\n' "${summary[@]}"
