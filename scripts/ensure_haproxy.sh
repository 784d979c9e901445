#!/usr/bin/env bash
# Make sure Debian's HAProxy is installed for the cluster (scripts/cluster.py puts it in front of the two
# web nodes) and its tests. Nothing here starts or enables the system's haproxy service: the cluster runs
# its own haproxy with its own config on 127.0.0.1. Needs root and apt; without them the cluster tests
# skip themselves with the reason.
set -euo pipefail
if command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ]; then
  exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "[ensure_haproxy] installing Debian's haproxy for the cluster"
  apt-get update -qq >/dev/null
  policy=/usr/sbin/policy-rc.d
  created=""
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod +x "$policy" && created=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends haproxy >/dev/null
  if [ -n "$created" ]; then rm -f "$policy"; fi
else
  echo "[ensure_haproxy] haproxy is not installed and cannot be installed here; cluster tests will skip"
fi
