"""A real OpenSSH server on 127.0.0.1 for the ssh action's tests: Debian's /usr/sbin/sshd (installed by
scripts/ensure_sshd.sh, which `make test` runs), started on a free port with its own config, host key and
authorized_keys in a temporary folder, and stopped by pid.

sshd (core/localservers/sshd.py) runs as an unprivileged user and the tests log in as that user: as
root (CI), the user `drplan-ssh` (created if missing, with a fresh random password each run so password
logins can be tested; sshd checks it through PAM's unix_chkpwd, which works for the user sshd runs as);
as a normal user, that user (no password login test then: we do not know the password).
"""

from __future__ import annotations

import contextlib
import getpass
import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from core.localservers import sshd as local_sshd
from core.localservers.procs import alive

SSHD = local_sshd.SSHD
HOST = local_sshd.HOST
TEST_USER = "drplan-ssh"  # created when the tests run as root


@dataclass
class SSHServer:
    port: int
    username: str
    password: str | None  # None when we cannot know it (tests run as a normal user)
    known_hosts: str  # "[127.0.0.1]:PORT ssh-ed25519 AAAA…"
    client_key: str  # OpenSSH private key text, in authorized_keys
    home: Path  # a folder the login user may write (marker files)
    server: local_sshd.Sshd

    @property
    def pid(self) -> int:
        return self.server.pid

    def connection(self, **extra: object) -> dict[str, object]:
        """ssh.run connection parameters that log in with the key (secrets named as in `secrets()`)."""
        return {
            "host": HOST,
            "port": self.port,
            "username": self.username,
            "known_hosts_secret": "known-hosts",
            "key_secret": "ssh-key",
            **extra,
        }

    def secrets(self) -> dict[str, str]:
        values = {"known-hosts": self.known_hosts, "ssh-key": self.client_key}
        if self.password is not None:
            values["ssh-password"] = self.password
        return values


def _login_user() -> tuple[str, str | None]:
    if os.geteuid() != 0:
        return getpass.getuser(), None
    try:
        pwd.getpwnam(TEST_USER)
    except KeyError:
        subprocess.run(["useradd", "--create-home", "--shell", "/bin/sh", TEST_USER], check=True, capture_output=True)
    password = "pw-" + secrets.token_urlsafe(12)
    subprocess.run(["chpasswd"], input=f"{TEST_USER}:{password}\n", text=True, check=True, capture_output=True)
    return TEST_USER, password


def start_sshd() -> SSHServer:
    """sshd on a free port (core/localservers/sshd.py), with password logins (PAM) when we know the password."""
    if not local_sshd.available():
        pytest.skip(f"Debian's openssh-server is not installed ({SSHD}); run scripts/ensure_sshd.sh as root")
    username, password = _login_user()
    entry = pwd.getpwnam(username)
    root = Path(tempfile.mkdtemp(prefix="drplan-sshd-"))
    root.chmod(0o755)  # the login user reads its config and writes marker files here
    work = root / "work"
    work.mkdir()
    os.chown(work, entry.pw_uid, entry.pw_gid)
    try:
        server = local_sshd.start(root, username, password_auth=True, use_pam=True)
    except local_sshd.SshdError as exc:
        shutil.rmtree(root, ignore_errors=True)
        raise AssertionError(str(exc)) from None
    return SSHServer(
        port=server.port,
        username=username,
        password=password,
        known_hosts=server.known_hosts,
        client_key=server.client_key,
        home=work,
        server=server,
    )


def stop_sshd(server: SSHServer) -> None:
    with contextlib.suppress(ProcessLookupError):
        local_sshd.stop(server.server)
    shutil.rmtree(server.home.parent, ignore_errors=True)


def processes_with(text: str) -> list[int]:
    """Pids of live processes whose command line contains `text` (zombies do not count)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmdline and int(entry.name) != os.getpid() and alive(int(entry.name)):
            found.append(int(entry.name))
    return found


def processes_of(uid: int) -> list[int]:
    """Pids of the live processes of a user, sorted."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if entry.stat().st_uid == uid and alive(int(entry.name)):
                    found.append(int(entry.name))
    return sorted(found)
