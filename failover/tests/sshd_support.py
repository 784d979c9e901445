"""A real OpenSSH server on 127.0.0.1 for the ssh action's tests: Debian's /usr/sbin/sshd (installed by
scripts/ensure_sshd.sh, which `make test` runs), started on a free port with its own config, host key and
authorized_keys in a temporary folder, and stopped by pid.

sshd runs as an unprivileged user and the tests log in as that user: as root (CI), the user `drplan-ssh`
(created if missing, with a fresh random password each run so password logins can be tested; sshd checks
it through PAM's unix_chkpwd, which works for the user sshd runs as); as a normal user, that user (no
password login test then: we do not know the password).
"""

from __future__ import annotations

import contextlib
import getpass
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import asyncssh
import pytest

from failover.lab.procs import alive, free_port
from failover.tests.engine_support import wait_for

SSHD = "/usr/sbin/sshd"
HOST = "127.0.0.1"
TEST_USER = "drplan-ssh"  # created when the tests run as root


@dataclass
class SSHServer:
    port: int
    username: str
    password: str | None  # None when we cannot know it (tests run as a normal user)
    known_hosts: str  # "[127.0.0.1]:PORT ssh-ed25519 AAAA…"
    client_key: str  # OpenSSH private key text, in authorized_keys
    home: Path  # a folder the login user may write (marker files)
    proc: subprocess.Popen = field(repr=False)

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


def _banner(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=1) as sock:
            return sock.recv(64).startswith(b"SSH-2.0-")
    except OSError:
        return False


def start_sshd() -> SSHServer:
    if not os.access(SSHD, os.X_OK):
        pytest.skip(f"Debian's openssh-server is not installed ({SSHD}); run scripts/ensure_sshd.sh as root")
    username, password = _login_user()
    entry = pwd.getpwnam(username)
    root = Path(tempfile.mkdtemp(prefix="drplan-sshd-"))
    root.chmod(0o755)  # the login user reads its config and writes marker files here
    host_key = asyncssh.generate_private_key("ssh-ed25519")
    client_key = asyncssh.generate_private_key("ssh-ed25519")
    (root / "host_key").write_bytes(host_key.export_private_key())
    (root / "authorized_keys").write_bytes(client_key.export_public_key())
    work = root / "work"
    work.mkdir()
    port = free_port()
    (root / "sshd_config").write_text(
        "\n".join(
            [
                f"Port {port}",
                f"ListenAddress {HOST}",
                f"HostKey {root / 'host_key'}",
                f"PidFile {root / 'sshd.pid'}",
                f"AuthorizedKeysFile {root / 'authorized_keys'}",
                f"AllowUsers {username}",
                "StrictModes no",  # the temporary folder is not the user's home
                "UsePAM yes",
                "PasswordAuthentication yes",
                "KbdInteractiveAuthentication no",
                "PubkeyAuthentication yes",
                "PermitRootLogin no",
                "PrintMotd no",
                "LogLevel VERBOSE",
                "",
            ]
        )
    )
    for path in [root, work, *root.iterdir()]:
        os.chown(path, entry.pw_uid, entry.pw_gid)
    (root / "host_key").chmod(0o600)
    as_user = {"user": username, "group": entry.pw_gid, "extra_groups": []} if os.geteuid() == 0 else {}
    with open(root / "sshd.log", "ab") as log:
        proc = subprocess.Popen(
            [SSHD, "-D", "-e", "-f", str(root / "sshd_config")],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            **as_user,
        )
    server = SSHServer(
        port=port,
        username=username,
        password=password,
        known_hosts=f"[{HOST}]:{port} {host_key.export_public_key().decode().strip()}\n",
        client_key=client_key.export_private_key().decode(),
        home=work,
        proc=proc,
    )

    def listening() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"sshd exited {proc.returncode}: {(root / 'sshd.log').read_text()}")
        return _banner(port)

    try:
        wait_for(listening, timeout=20)
    except BaseException:
        stop_sshd(server)
        raise
    return server


def stop_sshd(server: SSHServer) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(server.proc.pid, signal.SIGTERM)
    try:
        server.proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.proc.pid, signal.SIGKILL)
        server.proc.wait()
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
