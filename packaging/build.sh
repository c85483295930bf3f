#!/usr/bin/env bash
# The build steps of the container image (the Dockerfile's build stage runs this
# script), run on the host by CI as well, so that they cannot rot.
# Usage: bash packaging/build.sh DEST
#   builds the wxgate binary, installs it as DEST/usr/local/bin/wxgate, and checks that
#   it runs and that the image's configuration is valid.
#   PROFILE=release (default) or dev (CI reuses the test build this way).
set -euo pipefail
cd "$(dirname "$0")/.."
DEST=${1:?usage: bash packaging/build.sh DEST}
PROFILE=${PROFILE:-release}

cargo build --locked --profile "$PROFILE" -p wxgate --bin wxgate
case "$PROFILE" in
  dev) built=debug ;;
  *) built=$PROFILE ;;
esac
BIN="$DEST/usr/local/bin/wxgate"
install -D -m 0755 "${CARGO_TARGET_DIR:-target}/$built/wxgate" "$BIN"
if [ "$PROFILE" = release ] && command -v strip >/dev/null 2>&1; then
  strip "$BIN"
fi

# The binary runs, and the configuration the image ships is valid once its
# environment is set (values of the right shape, not real secrets).
"$BIN" --version
WXGATE_ADMIN_TOKEN=build-check-admin-token-0123456789 \
WXGATE_APP_ID=wx5d3c9a1b2e4f6071 \
WXGATE_APP_SECRET=0123456789abcdef0123456789abcdef \
WXGATE_TOKEN=BuildCheckToken2026 \
WXGATE_AES_KEY=Nq8bOmP1aZ3gq09gUI4Shh6wnqoquXgcF5bcUfKohjI \
  "$BIN" check --config packaging/wxgate.container.toml
echo "built $BIN ($(du -h "$BIN" | cut -f1))"
