#!/usr/bin/env bash
# Set up everything the test suite needs on a fresh Debian machine, then run it.
#   bash tests/run.sh [pytest args...]
# As root it installs the system peers (gnome-keyring, dbus, chromium) with apt; otherwise
# the tests that need them skip themselves. Python deps go into ./.venv, npm peers into
# tests/peers/node_modules (from the committed lock file).
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v gnome-keyring-daemon >/dev/null || need_apt+=(gnome-keyring)
command -v dbus-daemon >/dev/null || need_apt+=(dbus-x11)
command -v chromium >/dev/null || need_apt+=(chromium)
command -v tinyproxy >/dev/null || need_apt+=(tinyproxy)
command -v node >/dev/null || need_apt+=(nodejs npm)
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_apt[@]}"
  else
    echo "tests/run.sh: not installing ${need_apt[*]} (needs root and apt); those tests will skip" >&2
  fi
fi

python=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$python" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[test]'

if command -v npm >/dev/null; then
  (cd tests/peers && npm ci --no-audit --no-fund --loglevel=error)
fi

.venv/bin/ruff check mcp_bridge tests benchmarks
.venv/bin/ruff format --check mcp_bridge tests benchmarks
.venv/bin/mypy mcp_bridge benchmarks tests
.venv/bin/python -m pytest "$@"
