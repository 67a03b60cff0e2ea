#!/usr/bin/env bash
# Install headless Chromium and its WebDriver from the Debian packages, for the browser test
# (tests/e2e/test_demo_browser.py). Idempotent: when both are present it only checks.
#
#   scripts/install-browser.sh
#
# Selenium drives /usr/bin/chromium through /usr/bin/chromedriver; nothing is downloaded
# by Selenium Manager or by a browser installer of its own.
set -euo pipefail

say() { printf 'install-browser: %s\n' "$*" >&2; }

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

packages=()
[[ -x /usr/bin/chromium ]] || packages+=(chromium)
[[ -x /usr/bin/chromedriver ]] || packages+=(chromium-driver)

if [[ ${#packages[@]} -gt 0 ]]; then
  say "installing ${packages[*]} with apt-get"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "${packages[@]}" fonts-dejavu-core >/dev/null
fi

say "$(/usr/bin/chromium --version 2>/dev/null || echo 'chromium: not runnable')"
say "$(/usr/bin/chromedriver --version 2>/dev/null || echo 'chromedriver: not runnable')"
