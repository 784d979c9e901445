#!/usr/bin/env bash
# Make sure Debian's Pango is installed: WeasyPrint (compliance report PDFs) loads libpango-1.0 and
# libpangoft2-1.0 at run time, and fonts (DejaVu) to draw with. Needs root and apt; without them it says what
# is missing and report PDFs fail with WeasyPrint's own message.
set -euo pipefail
if /sbin/ldconfig -p 2>/dev/null | grep -q "libpangoft2-1.0.so.0" && fc-list 2>/dev/null | grep -qi dejavu; then
  exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "[ensure_pango] installing Debian's Pango and DejaVu fonts for WeasyPrint (report PDFs)"
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    libpango-1.0-0 libpangoft2-1.0-0 fonts-dejavu-core >/dev/null
else
  echo "[ensure_pango] Pango (libpangoft2-1.0) or the DejaVu fonts are missing and cannot be installed here;"
  echo "[ensure_pango] compliance report PDFs will fail until they are installed"
fi
