#!/usr/bin/env bash
# The HTML leaderboard is tested in headless Chromium: install Debian's chromium and
# chromium-driver when they are missing and this user may install packages. Elsewhere the
# browser tests are skipped (or fail, when PRUNEBENCH_REQUIRE_BROWSER=1, as in CI).
set -euo pipefail
if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then
  exit 0
fi
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  echo "installing Debian's chromium and chromium-driver for the HTML leaderboard tests ..." >&2
  apt-get update -qq && apt-get install -y -qq chromium chromium-driver >/dev/null
else
  echo "chromium / chromedriver not found: the HTML leaderboard browser tests will be skipped" >&2
fi
