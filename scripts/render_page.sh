#!/usr/bin/env bash
# Render a local HTML file to a PNG with headless Chromium, offline (no network, no profile, no sandbox for root).
# Usage: scripts/render_page.sh PAGE.html OUT.png [WIDTHxHEIGHT]
# Used by the report test (tests/integration/test_report_chromium.py) and for the screenshots in docs/.
set -euo pipefail
page=$(realpath "$1"); out=$(realpath -m "$2"); size=${3:-1200x3000}
browser=$(command -v chromium || command -v chromium-browser || true)
[ -n "$browser" ] || { echo "render_page: chromium is not installed (scripts/system-deps.sh installs it)" >&2; exit 2; }
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
"$browser" --headless --no-sandbox --disable-gpu --no-first-run --disable-background-networking \
  --disable-component-update --disable-sync --user-data-dir="$profile" --hide-scrollbars \
  --window-size="${size/x/,}" --screenshot="$out" "file://$page" >/dev/null 2>&1
test -s "$out"
