#!/usr/bin/env bash
# Install what `make run` and `make test` need on a Debian machine with Python 3.11+.
# Idempotent: when everything is present it only checks, and `uv sync` finds nothing to do.
#
#   scripts/bootstrap.sh            uv, redis-server, the Python workspace (with dev tools)
#   scripts/bootstrap.sh --compose  also what only the tests need: docker-compose (validates
#                                   docker-compose.yml; no engine), Node.js (the JS client's tests)
#                                   stunnel4 (TLS in front of the test broker) and a C
#                                   compiler (the test of the core compiled with mypyc)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
export UV_PYTHON_DOWNLOADS=never

with_compose=0
for arg in "$@"; do
  case "$arg" in
    --compose) with_compose=1 ;;
    *) echo "bootstrap: unknown argument $arg" >&2; exit 2 ;;
  esac
done

say() { printf 'bootstrap: %s\n' "$*" >&2; }

as_root() {
  if [[ $(id -u) -eq 0 ]]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo "$@"
  else
    say "need root to run: $*"
    exit 1
  fi
}

updated=0
apt_install() {
  if [[ $updated -eq 0 ]]; then
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    updated=1
  fi
  say "installing $* with apt-get"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "$@" >/dev/null
}

apt_packages=()
command -v redis-server >/dev/null 2>&1 || apt_packages+=(redis-server)
if [[ $with_compose -eq 1 ]]; then
  command -v docker-compose >/dev/null 2>&1 || apt_packages+=(docker-compose)
  command -v node >/dev/null 2>&1 || apt_packages+=(nodejs)
  # TLS in front of the test broker (the managed-Kafka tests)
  command -v stunnel4 >/dev/null 2>&1 || apt_packages+=(stunnel4)
  # a C compiler and Python's headers (the test of the core compiled with mypyc)
  command -v gcc >/dev/null 2>&1 || apt_packages+=(gcc libc6-dev)
  python3 -c 'import os, sys, sysconfig
sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))' \
    || apt_packages+=(python3-dev)
fi
if [[ ${#apt_packages[@]} -gt 0 ]]; then
  apt_install "${apt_packages[@]}"
fi

install_uv() {
  python3 -m pip --version >/dev/null 2>&1 || apt_install python3-pip
  local args=(install --quiet --disable-pip-version-check)
  [[ $(id -u) -eq 0 ]] || args+=(--user)
  say "installing uv with pip"
  local log
  log=$(mktemp)
  if ! python3 -m pip "${args[@]}" uv 2>"$log"; then
    if grep -q externally-managed "$log"; then
      # Debian's own Python refuses pip installs (PEP 668); uv is one self-contained binary.
      python3 -m pip "${args[@]}" --break-system-packages uv
    else
      cat "$log" >&2
      rm -f "$log"
      return 1
    fi
  fi
  rm -f "$log"
}

if command -v uv >/dev/null 2>&1; then
  uv=(uv)
else
  python3 -m uv --version >/dev/null 2>&1 || install_uv
  uv=(python3 -m uv)
fi

python3 - <<'PY'
import sys
if sys.version_info < (3, 11):
    sys.exit(f"bootstrap: Python 3.11 or newer is needed, found {sys.version.split()[0]}")
PY

"${uv[@]}" sync --frozen --all-packages --quiet
