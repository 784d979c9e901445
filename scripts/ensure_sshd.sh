#!/usr/bin/env bash
# Make sure Debian's OpenSSH server is installed for the ssh action's tests (each test starts its own
# sshd on a free port of 127.0.0.1 with a config, host key and authorized_keys in a temporary folder;
# nothing here starts or enables the system's sshd service). Needs root and apt; without them the
# ssh tests skip themselves with the reason.
set -euo pipefail
if [ -x /usr/sbin/sshd ]; then
  exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "[ensure_sshd] installing Debian's openssh-server for the ssh action tests"
  apt-get update -qq >/dev/null
  # policy-rc.d exit 101: the package must not start (or enable) the system's sshd service
  policy=/usr/sbin/policy-rc.d
  created=""
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod +x "$policy" && created=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends openssh-server >/dev/null
  if [ -n "$created" ]; then rm -f "$policy"; fi
else
  echo "[ensure_sshd] /usr/sbin/sshd is not installed and cannot be installed here; ssh tests will skip"
fi
