"""A local OpenSSH server on 127.0.0.1: Debian's /usr/sbin/sshd (scripts/ensure_sshd.sh installs it), started
on a free port with its own config, host key and authorized_keys in a folder of ours, as an unprivileged
user, and stopped by pid.

sshd run by a user other than root can only log that same user in, so `username` is both: the user the
server runs as and the one the client key logs in as. Used by the DR lab (its nodes reached over SSH) and the
ssh action's tests (failover/tests/sshd_support.py).
"""

from __future__ import annotations

import os
import pwd
import socket
import time
from dataclasses import dataclass
from pathlib import Path

from core.localservers import procs

SSHD = "/usr/sbin/sshd"
HOST = "127.0.0.1"


class SshdError(RuntimeError):
    """sshd is missing or did not start (the message says why)."""


@dataclass
class Sshd:
    port: int
    username: str
    pid: int
    root: Path  # config, keys and log
    known_hosts: str  # "[127.0.0.1]:PORT ssh-ed25519 AAAA…\n"
    client_key: str  # OpenSSH private key text, in authorized_keys

    @property
    def log(self) -> Path:
        return self.root / "sshd.log"


def available() -> bool:
    return os.access(SSHD, os.X_OK)


def banner(port: int, host: str = HOST) -> bool:
    """Something on host:port greets like an SSH server."""
    try:
        with socket.create_connection((host, port), timeout=1) as sock:
            return sock.recv(64).startswith(b"SSH-2.0-")
    except OSError:
        return False


def start(
    root: Path,
    username: str,
    *,
    port: int | None = None,
    password_auth: bool = False,
    use_pam: bool = False,
    timeout: float = 20,
) -> Sshd:
    """Start sshd (in its own session, as `username` when we are root) and wait until it answers.
    `root` must exist; it gets sshd_config, host_key, authorized_keys and sshd.log."""
    import asyncssh

    if not available():
        raise SshdError(f"Debian's openssh-server is not installed ({SSHD}); run scripts/ensure_sshd.sh as root")
    entry = pwd.getpwnam(username)
    host_key = asyncssh.generate_private_key("ssh-ed25519")
    client_key = asyncssh.generate_private_key("ssh-ed25519")
    (root / "host_key").write_bytes(host_key.export_private_key())
    (root / "authorized_keys").write_bytes(client_key.export_public_key())
    port = port or procs.free_port()
    yes_no = {True: "yes", False: "no"}
    (root / "sshd_config").write_text(
        "\n".join(
            [
                f"Port {port}",
                f"ListenAddress {HOST}",
                f"HostKey {root / 'host_key'}",
                f"PidFile {root / 'sshd.pid'}",
                f"AuthorizedKeysFile {root / 'authorized_keys'}",
                f"AllowUsers {username}",
                "StrictModes no",  # the folder is not the user's home
                f"UsePAM {yes_no[use_pam]}",
                f"PasswordAuthentication {yes_no[password_auth]}",
                "KbdInteractiveAuthentication no",
                "PubkeyAuthentication yes",
                "PermitRootLogin no",
                "PrintMotd no",
                "LogLevel VERBOSE",
                "",
            ]
        )
    )
    for path in [root, *root.iterdir()]:
        os.chown(path, entry.pw_uid, entry.pw_gid)
    (root / "host_key").chmod(0o600)
    user = username if os.geteuid() == 0 else None
    pid = procs.spawn([SSHD, "-D", "-e", "-f", str(root / "sshd_config")], user, log=root / "sshd.log", cwd=root)
    server = Sshd(
        port=port,
        username=username,
        pid=pid,
        root=root,
        known_hosts=f"[{HOST}]:{port} {host_key.export_public_key().decode().strip()}\n",
        client_key=client_key.export_private_key().decode(),
    )
    deadline = time.monotonic() + timeout
    while not banner(port):
        if not procs.alive(pid):
            raise SshdError(f"sshd exited: {server.log.read_text(errors='replace')[-2000:]}")
        if time.monotonic() > deadline:
            stop(server)
            raise SshdError(f"sshd did not answer on port {port} within {timeout:g} s (see {server.log})")
        time.sleep(0.05)
    return server


def stop(server: Sshd, timeout: float = 10) -> bool:
    """Stop sshd and the sessions it still serves (its process group); True when it is gone."""
    group = [server.pid, *procs.descendants(server.pid)]
    procs.stop(server.pid, timeout)
    for pid in procs.wait_gone(group, 2):
        procs.kill(pid)
    return not procs.wait_gone(group, 5)
