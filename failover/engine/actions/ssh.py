"""The ssh.run action, and run_remote(): run an argv on another host over SSH (asyncssh).

    - id: stop-app
      action: ssh.run
      with:
        host: app-1.dc2.example.internal
        port: 22                             # default 22
        username: drplan
        known_hosts_secret: app-1-host-key   # known_hosts lines, e.g. the output of ssh-keyscan
        key_secret: drplan-ssh-key           # an unencrypted private key; or password_secret
        argv: [systemctl, stop, orders-api]
        env: {LC_ALL: C}
        cwd: /srv/orders
        expected_exit_codes: [0]             # default [0]
        connect_timeout: 10                  # seconds, default 10, bounded by the step's timeout

Before connecting, every secret is read and checked: a missing secret, a known_hosts secret without an entry
for the host (`[host]:port` as `ssh-keyscan -p PORT` prints it, or `host` for any port) or a
key secret that is not an unencrypted private key fails the step naming the secret, never its value. The
server's host key must match the known_hosts entry, else the connection is refused before authentication
and nothing runs. No ~/.ssh/config, default key or agent of the worker is used. If a secret the step used
has allowed hosts, the host must be one of them.

The remote command. SSH carries a command line, not an argv: the remote user's login shell (POSIX: sh,
dash, bash, zsh) parses it. Each argv element, env value and the cwd is quoted on its own (shlex.quote),
so a value like `x; touch pwned` stays one argument: `echo MARKER$$ && exec 2>&1 && cd -- CWD && export
N=V && exec ARGV…`. sshd makes each session's shell a session and process-group leader, so the pid it prints first
(the marker line, not logged) is the remote process group. Output (stdout and stderr merged) goes line by
line to the step's log with the shell action's bounds (shell.OutputLines). On timeout or cancel the group
gets `kill -s TERM` through a second channel of the same connection, then KILL after the grace period (cut
short by a fencing coordinator's deadline, as for local steps), and
the channel and connection are closed: nothing started by the step is left on the host (except what it
moved to another session, as with the shell action). Output: {host, port, exit_code (negative: killed by
that signal), stdout, lines}.

For other actions (e.g. pg_rewind on the node that holds the data):

    run_remote(argv, ctx, connection, *, env=None, cwd=None, expected_exit_codes=(0,)) -> ActionResult

`connection` holds the connection parameters above (host, port, username, known_hosts_secret, key_secret or
password_secret, connect_timeout: the schema's `ssh_connection_schema()`, runbooks/action_schemas/ssh.py);
the result is the ssh.run result: ok on an expected exit code, `output` as above, `error` naming
`ssh USER@HOST:PORT`. It honours ctx.timeout and ctx.cancelled like the action and never raises. Call it
from a thread without a running event loop (an executor's thread; otherwise it runs in a new thread).

`SshTarget(connection, ctx)` checks the same parameters and reads their secrets once; `run_lines()` on it
runs one argv and hands every output line to a callback, unbounded (commands.SshRunner: pg_waldump's
output is parsed, not logged). Its `stdin_env` values (a password) reach the remote program through the
channel's stdin, read by the remote shell into the environment: never on a command line.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import re
import secrets
import shlex
import signal
import time
from collections.abc import Awaitable, Collection, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from failover.engine.actions import ActionResult, StepContext, executor
from failover.engine.actions.shell import (
    KILL_GRACE_SECONDS,
    MAX_LINE_BYTES,
    WATCH_INTERVAL,
    OutputLines,
    argv_of,
    grace_within,
)

CONNECTION_KEYS = ("host", "port", "username", "known_hosts_secret", "key_secret", "password_secret", "connect_timeout")
DEFAULT_CONNECT_TIMEOUT = 10.0
READ_CHUNK = 64 * 1024
KILL_COMMAND_TIMEOUT = 5.0  # for each of the two kill commands
MARKER_WAIT = 2.0  # how long a stop waits for the marker line (the remote group) if it has not come yet
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class _Refused(Exception):
    """A parameter or secret is not usable: the step fails before connecting."""


@dataclass
class _Target:
    host: str
    port: int
    username: str
    label: str  # "ssh USER@HOST:PORT"
    credential: str  # "key_secret 'NAME'" / "password_secret 'NAME'"
    known_hosts_name: str
    connect_timeout: float
    options: dict[str, Any] = field(repr=False)  # for asyncssh.connect


class _RemoteLines(OutputLines):
    """OutputLines that takes the marker line (the remote group's id) out of the output."""

    def __init__(self, ctx: StepContext, marker: str, group: asyncio.Future[int]) -> None:
        super().__init__(ctx)
        self.marker = marker
        self.group = group

    def add(self, line: str) -> None:
        if not self.group.done() and line.startswith(self.marker) and line[len(self.marker) :].isdigit():
            self.group.set_result(int(line[len(self.marker) :]))
            return
        super().add(line)


def _read_secret(ctx: StepContext, label: str, param: str, name: str) -> str:
    if ctx.secret is None:
        raise _Refused(f"{label}: {param} '{name}': no secret store available")
    try:
        return ctx.secret(name)
    except Exception as exc:  # e.g. InvalidInput "secret 'X' is not defined"
        raise _Refused(f"{label}: {param} '{name}': {getattr(exc, 'message', None) or type(exc).__name__}") from None


def _asyncssh() -> Any:
    """asyncssh, imported when first used; its INFO log would show each command line, env values included."""
    import asyncssh

    asyncssh.set_log_level(logging.WARNING)
    return asyncssh


def _target(connection: Mapping[str, Any], ctx: StepContext) -> _Target:
    """Check the connection parameters and read their secrets, before anything connects."""
    asyncssh = _asyncssh()

    host = str(connection.get("host") or "").strip()
    username = str(connection.get("username") or "").strip()
    try:
        port = int(connection.get("port") or 22)
    except (TypeError, ValueError):
        raise _Refused(f"ssh {username}@{host}: port {connection.get('port')!r} is not a number") from None
    label = f"ssh {username}@{host}:{port}"
    if not host or not username or not 1 <= port <= 65535:
        raise _Refused(f"{label}: host and username must be non-empty and port within 1-65535")
    key_name, password_name = connection.get("key_secret"), connection.get("password_secret")
    if bool(key_name) == bool(password_name):
        raise _Refused(f"{label}: needs exactly one of key_secret and password_secret")
    known_name = str(connection.get("known_hosts_secret") or "")
    if not known_name:
        raise _Refused(f"{label}: known_hosts_secret is required (the host key is always checked)")

    known_text = _read_secret(ctx, label, "known_hosts_secret", known_name)
    try:
        known_hosts = asyncssh.import_known_hosts(known_text)
    except Exception:  # what a parser says may quote the value: never shown
        raise _Refused(f"{label}: known_hosts_secret '{known_name}' is not in known_hosts format") from None
    entry = host if port == 22 else f"[{host}]:{port}"
    address = host if _is_ip(host) else ""
    trusted, authorities, *_ = known_hosts.match(host, address, port)
    if not trusted and not authorities:
        raise _Refused(f"{label}: known_hosts_secret '{known_name}' has no key for {entry}")

    options: dict[str, Any] = {
        "host": host,
        "port": port,
        "username": username,
        "known_hosts": known_hosts,
        "config": None,  # not the worker's ~/.ssh/config
        "agent_path": None,
        "host_based_auth": False,
        "gss_auth": False,
        "gss_kex": False,
    }
    if key_name:
        credential = f"key_secret '{key_name}'"
        key_text = _read_secret(ctx, label, "key_secret", str(key_name))
        try:
            key = asyncssh.import_private_key(key_text)
        except Exception as exc:  # its message is not shown (it could quote the value)
            if "passphrase" in str(exc).lower():
                raise _Refused(
                    f"{label}: {credential} is an encrypted private key (an unencrypted one is needed)"
                ) from None
            raise _Refused(f"{label}: {credential} is not a private key (OpenSSH or PEM)") from None
        options.update(client_keys=[key], password=None, password_auth=False, kbdint_auth=False)
    else:
        credential = f"password_secret '{password_name}'"
        password = _read_secret(ctx, label, "password_secret", str(password_name))
        if not password:
            raise _Refused(f"{label}: {credential} is empty")
        options.update(client_keys=None, password=password, public_key_auth=False)
    refused = ctx.refuse_host(host, port)
    if refused:
        raise _Refused(f"{label}: {refused}")
    connect_timeout = float(connection.get("connect_timeout") or DEFAULT_CONNECT_TIMEOUT)
    if ctx.timeout:
        connect_timeout = min(connect_timeout, float(ctx.timeout))
    options["connect_timeout"] = connect_timeout
    return _Target(host, port, username, label, credential, known_name, connect_timeout, options)


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def remote_command(
    argv: Sequence[str],
    marker: str,
    env: Mapping[str, str] | None,
    cwd: str | None,
    stdin_env: Sequence[str] = (),
) -> str:
    """The command line for the remote shell: every value quoted on its own. The variables named in
    `stdin_env` are read, one line each, from stdin (their values never appear on the command line)."""
    parts = [f"echo {marker}$$", "exec 2>&1"]  # one stream, in order, like the shell action's
    parts += [f"IFS= read -r {name} && export {name}" for name in stdin_env]
    if cwd:
        parts.append(f"cd -- {shlex.quote(cwd)}")
    parts += [f"export {name}={shlex.quote(value)}" for name, value in (env or {}).items()]
    parts.append("exec " + " ".join(shlex.quote(arg) for arg in argv))
    return " && ".join(parts)


@dataclass
class _Outcome:
    exit_code: int | None = None
    stopped: str = ""  # "" when the command ended; else "cancelled" or "timed out after Ns"
    kill_note: str = ""


async def _watch(ctx: StepContext, deadline: float | None) -> str:
    while True:
        if ctx.cancelled.is_set():
            return "cancelled"
        if deadline is not None and time.monotonic() >= deadline:
            return f"timed out after {ctx.timeout:g}s"
        await asyncio.sleep(WATCH_INTERVAL)


async def _or_stop(awaitable: Awaitable[Any], watcher: asyncio.Task[str]) -> tuple[Any, str]:
    """(result, "") when `awaitable` finishes first; (None, why) when the step is stopped first."""
    task = asyncio.ensure_future(awaitable)
    await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        return task.result(), ""
    task.cancel()
    with contextlib.suppress(BaseException):
        await task
    return None, watcher.result()


def _exit_code(process: Any) -> int | None:
    if process.exit_signal:
        name = str(process.exit_signal[0])
        number = getattr(signal, f"SIG{name}", None)
        return -int(number) if number is not None else -1
    return process.exit_status


async def _pump(process: Any, lines: _RemoteLines) -> None:
    while chunk := await process.stdout.read(READ_CHUNK):
        lines.feed(chunk)
    lines.close()
    await process.wait_closed()


async def _kill_group(conn: Any, process: Any, lines: _RemoteLines, pump: asyncio.Task[None], grace: float) -> str:
    """TERM the remote process group, KILL it after `grace`, close the channel. Says what was done."""
    import asyncssh

    if not lines.group.done():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(lines.group), MARKER_WAIT)
    if not lines.group.done():
        process.close()
        return "channel closed (the remote shell printed no process group: is it a POSIX shell?)"
    group = lines.group.result()
    try:
        await asyncio.wait_for(conn.run(f"kill -s TERM -- -{group}", check=False), KILL_COMMAND_TIMEOUT)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(pump), grace)
        await asyncio.wait_for(conn.run(f"kill -s KILL -- -{group} 2>/dev/null", check=False), KILL_COMMAND_TIMEOUT)
    except (OSError, asyncssh.Error, TimeoutError) as exc:
        process.close()
        return f"could not kill the remote process group {group} ({type(exc).__name__}: {exc}); channel closed"
    process.close()
    return f"remote process group {group} killed"


async def _session(
    target: _Target, command: str, lines: _RemoteLines, ctx: StepContext, grace: float, stdin: str | None = None
) -> _Outcome:
    import asyncssh

    deadline = time.monotonic() + float(ctx.timeout) if ctx.timeout else None
    watcher = asyncio.create_task(_watch(ctx, deadline))
    try:
        conn, stopped = await _or_stop(asyncssh.connect(**target.options), watcher)
        if stopped:
            return _Outcome(stopped=stopped)
        async with conn:
            process, stopped = await _or_stop(
                conn.create_process(
                    command,
                    stdin=asyncssh.DEVNULL if stdin is None else asyncssh.PIPE,
                    stderr=asyncssh.STDOUT,
                    encoding="utf-8",
                    errors="replace",
                ),
                watcher,
            )
            if stopped:
                return _Outcome(stopped=stopped)
            if stdin is not None:
                process.stdin.write(stdin)
                process.stdin.write_eof()
            pump = asyncio.create_task(_pump(process, lines))
            await asyncio.wait({pump, watcher}, return_when=asyncio.FIRST_COMPLETED)
            if pump.done():
                pump.result()
                return _Outcome(exit_code=_exit_code(process))
            # A fencing coordinator's deadline (kill_by) shortens the grace, as for local steps (shell.py).
            note = await _kill_group(conn, process, lines, pump, grace_within(ctx.cancelled, grace))
            pump.cancel()
            with contextlib.suppress(BaseException):
                await pump
            return _Outcome(exit_code=_exit_code(process), stopped=watcher.result(), kill_note=note)
    finally:
        watcher.cancel()


def _in_new_loop(run: Any) -> Any:
    """asyncio.run(run()) here, or in a new thread if this thread already runs an event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(run())
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(run())).result()


def _describe(exc: BaseException, target: _Target) -> str:
    import asyncssh

    if isinstance(exc, asyncssh.HostKeyNotVerifiable):
        return (
            f"host key verification failed: the host's key does not match known_hosts_secret "
            f"'{target.known_hosts_name}'; nothing was run"
        )
    if isinstance(exc, asyncssh.PermissionDenied):
        return f"authentication as {target.username} failed ({target.credential} refused)"
    if isinstance(exc, TimeoutError):
        return f"no answer within {target.connect_timeout:g}s"
    if isinstance(exc, asyncssh.DisconnectError):
        return f"disconnected: {exc.reason}"
    if isinstance(exc, asyncssh.ChannelOpenError):
        return f"could not open a session: {exc.reason}"
    if isinstance(exc, OSError):
        return f"could not connect: {exc.strerror or exc}"
    return f"{type(exc).__name__}: {exc}"


def run_remote(
    argv: Sequence[str],
    ctx: StepContext,
    connection: Mapping[str, Any],
    *,
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
    expected_exit_codes: Collection[int] = (0,),
    kill_grace_seconds: float = KILL_GRACE_SECONDS,
) -> ActionResult:
    """Run `argv` on the host of `connection` over SSH; see the module docstring. Never raises."""
    try:
        target = _target(connection, ctx)
    except _Refused as refused:
        return ActionResult(False, error=str(refused))
    command_argv = argv_of(list(argv) if isinstance(argv, list | tuple) else argv)
    if command_argv is None:
        return ActionResult(False, error=f"{target.label}: argv must be a non-empty list of strings")
    values = [*command_argv, *(env or {}).values(), cwd or ""]
    if any("\0" in str(value) for value in values):
        return ActionResult(False, error=f"{target.label}: argv, env and cwd may not contain NUL characters")
    bad_names = [name for name in (env or {}) if not ENV_NAME.match(str(name))]
    if bad_names:
        return ActionResult(False, error=f"{target.label}: env: {bad_names[0]!r} is not a variable name")
    marker = f"DRPLAN-PGID-{secrets.token_hex(8)}:"
    command = remote_command(command_argv, marker, {str(k): str(v) for k, v in (env or {}).items()}, cwd)
    holder: dict[str, _RemoteLines] = {}

    async def run() -> _Outcome:
        holder["lines"] = _RemoteLines(ctx, marker, asyncio.get_running_loop().create_future())
        return await _session(target, command, holder["lines"], ctx, kill_grace_seconds)

    try:
        outcome = _in_new_loop(run)
        error = ""
    except Exception as exc:  # connection or protocol errors: a failed result naming the host
        outcome, error = _Outcome(), _describe(exc, target)
    lines = holder.get("lines")
    if lines is not None:
        lines.finish()
    output = {
        "host": target.host,
        "port": target.port,
        "exit_code": outcome.exit_code,
        "stdout": lines.text if lines else "",
        "lines": lines.count if lines else 0,
    }
    if error:
        return ActionResult(False, output=output, error=f"{target.label}: {error}")
    if outcome.stopped:
        note = f"; {outcome.kill_note}" if outcome.kill_note else ""
        return ActionResult(False, output=output, error=f"{target.label}: {outcome.stopped}{note}")
    if outcome.exit_code not in expected_exit_codes:
        expected = list(expected_exit_codes)
        return ActionResult(
            False, output=output, error=f"{target.label}: exit code {outcome.exit_code} (expected {expected})"
        )
    return ActionResult(True, output=output)


class _SinkLines(_RemoteLines):
    """Every output line (but the marker) to `sink`, none dropped: the caller bounds what it keeps."""

    def __init__(self, ctx: StepContext, marker: str, group: asyncio.Future[int], sink: Any) -> None:
        super().__init__(ctx, marker, group)
        self.sink = sink

    def add(self, line: str) -> None:
        if not self.group.done() and line.startswith(self.marker) and line[len(self.marker) :].isdigit():
            self.group.set_result(int(line[len(self.marker) :]))
            return
        self.count += 1
        self.sink(line[:MAX_LINE_BYTES])


@dataclass
class RemoteRun:
    exit_code: int | None
    stopped: str = ""  # "" when the command ended by itself; else "cancelled" or "timed out after Ns"
    error: str = ""  # the command could not be run (connection, authentication, host key): says why


class SshTarget:
    """A host to run commands on: the connection parameters checked and their secrets read at creation
    (ValueError naming the parameter or secret, before anything connects)."""

    def __init__(self, connection: Mapping[str, Any], ctx: StepContext) -> None:
        try:
            self._target = _target(connection, ctx)
        except _Refused as refused:
            raise ValueError(str(refused)) from None
        self.label = self._target.label
        self.username = self._target.username

    def run_lines(
        self,
        argv: Sequence[str],
        ctx: StepContext,
        on_line: Any,
        *,
        env: Mapping[str, str] | None = None,
        stdin_env: Mapping[str, str] | None = None,
        kill_grace_seconds: float = KILL_GRACE_SECONDS,
    ) -> RemoteRun:
        """Run argv (ctx.timeout and ctx.cancelled bound it, as for ssh.run); never raises."""
        secret_names = list(stdin_env or {})
        bad = [n for n in [*(env or {}), *secret_names] if not ENV_NAME.match(str(n))]
        if bad:
            return RemoteRun(None, error=f"{self.label}: env: {bad[0]!r} is not a variable name")
        if any("\0" in str(v) or "\n" in str(v) for v in (stdin_env or {}).values()):
            return RemoteRun(None, error=f"{self.label}: a value sent on stdin may not contain a newline or NUL")
        marker = f"DRPLAN-PGID-{secrets.token_hex(8)}:"
        command = remote_command([str(a) for a in argv], marker, env, None, secret_names)
        stdin = "".join(f"{v}\n" for v in (stdin_env or {}).values()) if secret_names else None

        async def run() -> _Outcome:
            lines = _SinkLines(ctx, marker, asyncio.get_running_loop().create_future(), on_line)
            return await _session(self._target, command, lines, ctx, kill_grace_seconds, stdin)

        try:
            outcome = _in_new_loop(run)
        except Exception as exc:
            return RemoteRun(None, error=f"{self.label}: {_describe(exc, self._target)}")
        stopped = outcome.stopped + (f"; {outcome.kill_note}" if outcome.kill_note else "")
        return RemoteRun(outcome.exit_code, stopped=stopped if outcome.stopped else "")


@executor("ssh.run")
def run_ssh(params: dict[str, Any], ctx: StepContext) -> ActionResult:
    return run_remote(
        params.get("argv") or [],
        ctx,
        {key: params[key] for key in CONNECTION_KEYS if key in params},
        env=params.get("env"),
        cwd=params.get("cwd"),
        expected_exit_codes=params.get("expected_exit_codes") or [0],
        kill_grace_seconds=float(params.get("kill_grace_seconds", KILL_GRACE_SECONDS)),
    )
