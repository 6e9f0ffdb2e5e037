#!/usr/bin/env bash
# Make sure the console's end-to-end tests have a browser: Debian's chromium (and a font with Chinese
# characters, so screenshots are readable), installed from Debian's packages when missing. Playwright drives
# it through executable_path; `playwright install` (a browser download) is never used.
set -euo pipefail
SUDO=$([ "$(id -u)" = 0 ] && echo "" || echo sudo)
need=()
[ -x "${TG_TEST_CHROMIUM:-/usr/bin/chromium}" ] || need+=(chromium)
fc-list 2>/dev/null | grep -qi "wenquanyi\|noto sans cjk" || need+=(fonts-wqy-microhei)
if [ ${#need[@]} -gt 0 ]; then
  if command -v apt-get >/dev/null; then
    $SUDO apt-get update -qq && $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
  else
    echo "install ${need[*]} for the console's browser tests" >&2
  fi
fi
