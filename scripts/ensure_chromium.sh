#!/usr/bin/env bash
# The browser tests drive Debian's Chromium through Playwright (Playwright cannot download browsers here).
# Install it when missing and we may (root with apt-get); otherwise say how, and the browser tests skip
# with that reason.
set -u
if [ -x /usr/bin/chromium ]; then exit 0; fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing Debian's chromium for the browser tests (once)..."
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null \
    && exit 0
  echo "warning: apt-get could not install chromium; browser tests will be skipped." >&2
else
  echo "note: /usr/bin/chromium is missing; run 'sudo apt-get install -y chromium' to enable browser tests." >&2
fi
exit 0
