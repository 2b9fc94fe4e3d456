#!/usr/bin/env bash
# Render a local HTML file (or a loopback URL) to a PNG with headless Chromium, offline (no network, no profile,
# no sandbox for root).
# Usage: scripts/render_page.sh PAGE.html|http://127.0.0.1:PORT/ OUT.png [WIDTHxHEIGHT] [WAIT_MS]
# WAIT_MS: let the page's scripts run this long (virtual time) before the shot, for pages that fetch their data.
# Used by the report and operator-page tests (tests/integration/test_report_chromium.py, tests/integration/ui) and
# for the screenshots in docs/. tests/helpers/browser.py drives the same browser with the same flags interactively.
set -euo pipefail
case "$1" in
  http://127.0.0.1:*|http://localhost:*) url=$1 ;;
  *) url="file://$(realpath "$1")" ;;
esac
out=$(realpath -m "$2"); size=${3:-1200x3000}; wait_ms=${4:-}
browser=$(command -v chromium || command -v chromium-browser || true)
[ -n "$browser" ] || { echo "render_page: chromium is not installed (scripts/system-deps.sh installs it)" >&2; exit 2; }
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
"$browser" --headless --no-sandbox --disable-gpu --no-first-run --disable-background-networking \
  --disable-component-update --disable-sync --user-data-dir="$profile" --hide-scrollbars \
  --window-size="${size/x/,}" ${wait_ms:+--virtual-time-budget="$wait_ms"} --screenshot="$out" "$url" >/dev/null 2>&1
test -s "$out"
