#!/usr/bin/env bash
# Runs every test of the workspace on a fresh machine: installs what the tests need
# (python3-venv and wechatpy for the interop test), builds once, runs all tests.
# Usage: bash scripts/test.sh   (extra arguments go to `cargo test`)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

log() { printf '\n== %s\n' "$*"; }

apt_install() {
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "missing $*: install it with your package manager" >&2
    exit 1
  fi
  if [ ! -f /tmp/.wxgate-apt-updated ]; then
    apt-get update -qq && touch /tmp/.wxgate-apt-updated
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# --- Python venv with wechatpy (interop test) ------------------------------------
VENV="$ROOT/target/interop-venv"
if ! "$VENV/bin/python" -c 'import wechatpy, cryptography, xmltodict' >/dev/null 2>&1; then
  log "installing wechatpy into $VENV"
  command -v python3 >/dev/null 2>&1 || apt_install python3
  if ! python3 -m venv --help >/dev/null 2>&1 || ! python3 -c 'import ensurepip' >/dev/null 2>&1; then
    apt_install python3-venv
  fi
  rm -rf "$VENV"
  mkdir -p "$ROOT/target"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check wechatpy==1.8.18 cryptography xmltodict
fi
export WXGATE_INTEROP_PYTHON="$VENV/bin/python"

# --- Node (the README's identity-token snippet is run by a test) ------------------
command -v node >/dev/null 2>&1 || apt_install nodejs

# --- Chromium (the link page and the console run in a real headless browser; the ----
# --- console's test drives it through chromedriver) --------------------------------
if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
  apt_install chromium chromium-driver
fi

# --- Redis (the multi-instance tests share a real redis-server) -------------------
command -v redis-server >/dev/null 2>&1 || apt_install redis-server
REDIS_PORT=${WXGATE_TEST_REDIS_PORT:-6399}
if ! redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1; then
  log "starting redis-server on 127.0.0.1:$REDIS_PORT"
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no \
    --daemonize yes --pidfile "/tmp/wxgate-test-redis-$REDIS_PORT.pid" --logfile "/tmp/wxgate-test-redis-$REDIS_PORT.log"
  trap 'redis-cli -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true' EXIT
  for _ in $(seq 1 50); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
fi
export WXGATE_TEST_REDIS="redis://127.0.0.1:$REDIS_PORT"

# --- Build once, then run every test ---------------------------------------------
log "cargo test --workspace"
cargo test --workspace --all-targets --no-fail-fast "$@"
cargo test --workspace --doc
