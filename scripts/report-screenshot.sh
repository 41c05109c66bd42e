#!/usr/bin/env bash
# Renders the weekly report (sample, hostile and empty weeks, and the demo
# week through its signed link) in headless chromium, checks it as the tests
# do, and leaves full-page PNG screenshots in $ROLEKEEPER_ARTIFACTS
# (default: testdata/out at the repository root).
#
#   scripts/report-screenshot.sh [OUT.png]  # needs Debian's chromium
#   ROLEKEEPER_ARTIFACTS=/tmp/shots scripts/report-screenshot.sh
# With OUT.png, the demo week's report at 1280 px is also copied there.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v chromium >/dev/null 2>&1 && [ -z "${ROLEKEEPER_CHROMIUM:-}" ]; then
  echo "report-screenshot: no chromium; apt-get install -y chromium (or set ROLEKEEPER_CHROMIUM)" >&2
  exit 1
fi
export ROLEKEEPER_REQUIRE_BROWSER=1
export ROLEKEEPER_ARTIFACTS="${ROLEKEEPER_ARTIFACTS:-$PWD/testdata/out}"
go test -count=1 -run 'TestReportInBrowser|TestWeekReportInBrowser' ./internal/report ./internal/demo
ls -1 "$ROLEKEEPER_ARTIFACTS"/*.png
if [ $# -ge 1 ]; then
  cp "$ROLEKEEPER_ARTIFACTS/demo-week-report-1280.png" "$1"
  echo "$1: screenshot of the demo week's report at 1280 px"
fi
