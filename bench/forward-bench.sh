#!/usr/bin/env bash
# Throughput and latency of forwarding against rules-only, on this machine:
# wrk -t1 -c32 -d10s with a fresh MsgId per request (bench/unique-msgid.lua).
# Needs wrk, node, and `cargo build --release -p wxgate` (CARGO_TARGET_DIR is honoured).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${CARGO_TARGET_DIR:-target}/release/wxgate
rm -rf /tmp/wxgate-forward-bench
node bench/fwd-service.js 19000 & SVC=$!
"$BIN" serve --config bench/wxgate-forward.toml >/tmp/wxgate-forward-bench.log 2>&1 & GW=$!
trap 'kill $SVC $GW 2>/dev/null || true' EXIT
sleep 1
TS=$(date +%s)
SIG=$("$BIN" sign verify --token benchToken123 --timestamp "$TS" --nonce 424242)
export QUERY="signature=$SIG&timestamp=$TS&nonce=424242&openid=oBenchUser" TS
for account in rules fwd; do
  export ACCOUNT_PATH=/wx/$account
  wrk -t1 -c32 -d2s -s bench/unique-msgid.lua http://127.0.0.1:18090 >/dev/null
  echo "== $account"
  wrk -t1 -c32 -d10s --latency -s bench/unique-msgid.lua http://127.0.0.1:18090 | grep -E 'Requests/sec|Non-2xx|50%|99%|requests in'
done
echo "== wxgate peak RSS: $(awk '/^VmHWM/{print $2, $3}' /proc/$GW/status)"
curl -s http://127.0.0.1:18090/metrics | grep -E '^wxgate_(inbox_records|forward_deliveries_total|forward_retries_total|forward_dead)'
