#!/usr/bin/env bash
# Make sure Debian's chromium is installed for the browser tests (Playwright drives it with
# executable_path; it cannot download its own browser here). Needs root and apt; without them the
# browser tests skip themselves with the reason.
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "[ensure_chromium] installing Debian's chromium for the browser tests"
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
else
  echo "[ensure_chromium] chromium is not installed and cannot be installed here; browser tests will skip"
fi
