#!/usr/bin/env bash
# Install what `make run` and `make test` need on a Debian machine with Python 3.11+.
# Idempotent: when everything is present it only checks, and `uv sync` finds nothing to do.
#
#   scripts/bootstrap.sh            uv, redis-server, the Python workspace (with dev tools)
#   scripts/bootstrap.sh --compose  also docker-compose (validates docker-compose.yml; no engine)
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

apt_packages=()
command -v redis-server >/dev/null 2>&1 || apt_packages+=(redis-server)
if [[ $with_compose -eq 1 ]] && ! command -v docker-compose >/dev/null 2>&1; then
  apt_packages+=(docker-compose)
fi
if [[ ${#apt_packages[@]} -gt 0 ]]; then
  say "installing ${apt_packages[*]} with apt-get"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "${apt_packages[@]}" >/dev/null
fi

if command -v uv >/dev/null 2>&1; then
  uv=(uv)
else
  python3 -m uv --version >/dev/null 2>&1 || {
    say "installing uv with pip"
    python3 -m pip install --quiet --disable-pip-version-check uv
  }
  uv=(python3 -m uv)
fi

python3 - <<'PY'
import sys
if sys.version_info < (3, 11):
    sys.exit(f"bootstrap: Python 3.11 or newer is needed, found {sys.version.split()[0]}")
PY

"${uv[@]}" sync --frozen --all-packages --quiet
