#!/usr/bin/env bash
# Make sure Debian's MariaDB server is installed for the mariadb actions' tests and the MariaDB replication
# template (each test starts its own mariadbd pair, as an unprivileged user, with datadirs made by
# mariadb-install-db in a temporary folder, on free ports of 127.0.0.1). Nothing here starts or enables the
# system's mariadb service. Needs root and apt; without them the mariadb tests skip themselves with the reason.
set -euo pipefail
if [ -x /usr/sbin/mariadbd ] && command -v mariadb-install-db >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "[ensure_mariadb] installing Debian's mariadb-server for the mariadb action tests"
  apt-get update -qq >/dev/null
  # policy-rc.d exit 101: the package must not start (or enable) the system's mariadb service
  policy=/usr/sbin/policy-rc.d
  created=""
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod +x "$policy" && created=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends mariadb-server >/dev/null
  if [ -n "$created" ]; then rm -f "$policy"; fi
else
  echo "[ensure_mariadb] mariadb-server is not installed and cannot be installed here; mariadb tests will skip"
fi
