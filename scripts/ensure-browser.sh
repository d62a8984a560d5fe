#!/usr/bin/env bash
# Make sure Debian's Chromium is at /usr/bin/chromium for the browser tests (tests/browser), which
# drive it with Playwright. Playwright never downloads a browser of its own: `playwright install`
# is never run, the tests launch this executable instead. Where it is missing, install Debian's
# `chromium` package. Never skips silently: a browser that cannot be had is an error.
#
#   scripts/ensure-browser.sh
set -euo pipefail

chromium=/usr/bin/chromium

if [ -x "$chromium" ]; then
  echo "Chromium is installed: $("$chromium" --version 2>/dev/null || echo "$chromium")"
  exit 0
fi

echo "$chromium is missing: installing Debian's chromium package"
"$(dirname "$0")/apt-install.sh" chromium

if [ ! -x "$chromium" ]; then
  echo "$chromium is still missing after installing Debian's chromium package;" \
    "the browser tests (tests/browser) cannot run without it" >&2
  exit 1
fi
echo "Chromium is installed: $("$chromium" --version 2>/dev/null || echo "$chromium")"
