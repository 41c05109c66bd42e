#!/usr/bin/env bash
# Renders the weekly report of the demo week in headless Chromium and saves a
# screenshot, to look at the report as a person does.
# Needs Debian's chromium (apt-get install chromium). Usage:
#   scripts/report-screenshot.sh [OUT.png]
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-report.png}"
data="$(mktemp -d)"
trap 'rm -rf "$data"' EXIT
rmdir "$data"
go run ./cmd/rolekeeper demo --no-wait --pause 0 --listen 127.0.0.1:0 --data "$data" >/dev/null
html="$(ls "$data"/reports/rolekeeper-report-*.html | head -n1)"
profile="$(mktemp -d)"
chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync \
  --user-data-dir="$profile" --window-size=1200,3200 --hide-scrollbars \
  --screenshot="$out" "file://$html" 2>/dev/null
rm -rf "$profile"
echo "$out: screenshot of $(basename "$html")"
