#!/usr/bin/env bash
# Forwarding throughput: 1 instance on redb against 1 and 2 instances sharing Redis,
# on this machine. The same pushes as bench/forward-bench.sh (fresh MsgId each, a node
# service that replies at once); 32 connections in total (two wrk -c16 side by side
# for two instances). Redis runs with appendonly yes, appendfsync always (what the
# README asks for); set APPENDFSYNC=everysec to compare.
# Needs wrk, node, redis-server, and `cargo build --release -p wxgate`.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=target/release/wxgate
WORK=/tmp/wxgate-scale-bench
rm -rf "$WORK" && mkdir -p "$WORK/redis"
PIDS=()
trap 'kill "${PIDS[@]}" 2>/dev/null || true' EXIT
node bench/fwd-service.js 19000 & PIDS+=($!)
redis-server --port 6391 --bind 127.0.0.1 --save '' --appendonly yes \
  --appendfsync "${APPENDFSYNC:-always}" --dir "$WORK/redis" >/dev/null & PIDS+=($!)
sleep 0.5

config() { # name port storage
  cat <<TOML
listen = "127.0.0.1:$2"
data_dir = "$WORK/$1"
admin_token = "bench-admin-token-0123456789"
$3
[[account]]
name = "fwd"
app_id = "wx1234567890abcdef"
token = "benchToken123"
mode = "plain"
[account.forward]
url = "http://127.0.0.1:19000/hook"
secret = "bench-forward-secret-0123"
timeout_ms = 4000
TOML
}
REDIS=$'[storage]\nbackend = "redis"\nredis_url = "redis://127.0.0.1:6391/0"'
config redb 18101 "" >"$WORK/redb.toml"
config r1 18102 "$REDIS" >"$WORK/r1.toml"
config r2 18103 "$REDIS" >"$WORK/r2.toml"
for name in redb r1 r2; do
  "$BIN" serve --config "$WORK/$name.toml" >"$WORK/$name.log" 2>&1 & PIDS+=($!)
done
sleep 1

TS=$(date +%s)
SIG=$("$BIN" sign verify --token benchToken123 --timestamp "$TS" --nonce 424242)
export QUERY="signature=$SIG&timestamp=$TS&nonce=424242&openid=oBenchUser" TS ACCOUNT_PATH=/wx/fwd

run() { # label, then one port per wrk (32 connections split between them)
  local label=$1; shift
  local conns=$((32 / $#)) i=0 outs=()
  for port in "$@"; do
    MSG_PREFIX=9$i wrk -t1 -c"$conns" -d2s -s bench/unique-msgid.lua "http://127.0.0.1:$port" >/dev/null
    i=$((i + 1))
  done
  i=0
  for port in "$@"; do
    MSG_PREFIX=$((i + 1)) wrk -t1 -c"$conns" -d10s --latency -s bench/unique-msgid.lua \
      "http://127.0.0.1:$port" >"$WORK/wrk-$label-$port.txt" & outs+=($!)
    i=$((i + 1))
  done
  wait "${outs[@]}"
  echo "== $label"
  for port in "$@"; do
    grep -E 'Requests/sec|Non-2xx|50%|99%' "$WORK/wrk-$label-$port.txt" | sed "s/^/  [$port] /"
  done
  awk '/Requests\/sec/{sum+=$2} END{printf "  total rps: %.0f\n", sum}' "$WORK"/wrk-"$label"-*.txt
}
run redb-1-instance 18101
run redis-1-instance 18102
run redis-2-instances 18102 18103
for port in 18101 18102 18103; do
  echo "== metrics :$port"
  curl -s "http://127.0.0.1:$port/metrics" | grep -E '^wxgate_(inbox_records|forward_retries_total|forward_dead_letters_total|queue_)'
done
