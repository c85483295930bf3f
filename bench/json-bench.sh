#!/usr/bin/env bash
# JSON safe mode next to XML safe mode, one release wxgate, wrk on loopback.
# Needs wrk, a release build (cargo build --release -p wxgate) and Python with
# `cryptography` (scripts/test.sh installs it into target/interop-venv).
# Usage: bash bench/json-bench.sh [path/to/wxgate]
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-target/release/wxgate}
PYTHON=${PYTHON:-target/interop-venv/bin/python}
OUT=$(mktemp -d)
rm -rf /tmp/wxgate-json-bench-data
"$BIN" serve --config bench/wxgate-json-bench.toml >"$OUT/server.log" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true; rm -rf "$OUT"' EXIT
for _ in $(seq 1 50); do curl -s -o /dev/null http://127.0.0.1:18081/healthz && break; sleep 0.1; done
for round in 1 2 3; do
  "$PYTHON" bench/gen-json-requests.py "$OUT"
  for fmt in xml json; do
    wrk -t1 -c32 -d2s -s "$OUT/$fmt.lua" http://127.0.0.1:18081 >/dev/null
    printf 'round %s %-4s ' "$round" "$fmt"
    wrk -t1 -c32 -d10s --latency -s "$OUT/$fmt.lua" http://127.0.0.1:18081 |
      awk '/Requests\/sec/ {rps=$2} / 50%/ {p50=$2} / 99%/ {p99=$2} /Non-2xx/ {bad=$NF} END {printf "rps %s  p50 %s  p99 %s  non-2xx %s\n", rps, p50, p99, bad+0}'
  done
done
