"""Where an action runs its commands: the seam between "what to run" and "on which machine".

Actions that run programs on the node holding the data (postgres.rewind, postgres.rebuild_standby,
postgres.data_loss's pg_waldump) ask `command_runner(params, ctx)` for a runner and give it argv lists;
they never build a shell string. Two runners:

- `LocalRunner`: this machine (the worker's), a subprocess in its own process group, killed on timeout and
  cancel, through shell.run_process; `user` switches to that OS user (the worker must be root).
- `SshRunner`, chosen by the step parameter `run_on: {ssh: {host, port, username, known_hosts_secret,
  key_secret | password_secret, connect_timeout}}` (ssh.run's connection, checked and its secrets read
  before anything runs): the same argv over SSH (ssh.SshTarget), the remote process group killed on timeout
  and cancel. Commands run as the login user: a different `user` is refused (log in as the data's owner).
  Environment values the caller marks secret (PGPASSWORD) travel on the channel's stdin, not the command
  line.
"""

from __future__ import annotations

import dataclasses
import os
import pwd
import re
import subprocess
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from failover.engine.actions import StepContext
from failover.engine.actions.shell import INHERITED_ENV, run_process

TAIL_LINES = 20  # last output lines kept for an error message


@dataclass
class CommandResult:
    exit_code: int
    stopped: str = ""  # "" when the command ended by itself; else "cancelled" or "timed out after Ns"
    tail: list[str] = field(default_factory=list)  # its last output lines

    @property
    def ok(self) -> bool:
        return not self.stopped and self.exit_code == 0

    def last_line(self) -> str:
        """The last line that says what went wrong ("error:", "FATAL:"), else the last line."""
        lines = [line.strip() for line in self.tail if line.strip()]
        flagged = [line for line in lines if re.search(r"\b(error|fatal|failed)\b", line, re.IGNORECASE)]
        return (flagged or lines or [""])[-1]


class CommandRunner(Protocol):
    where: str  # for messages: "locally", "on db2.example.com over SSH"

    def run(
        self,
        argv: list[str],
        ctx: StepContext,
        *,
        timeout: float | None,
        env: dict[str, str] | None = None,
        user: str | None = None,
        on_line: Callable[[str], None] | None = None,
    ) -> CommandResult:
        """Run argv as `user` (None: the runner's own user) with `env` added to a minimal environment;
        each output line goes to `on_line` (default: the step's log). Kill it on timeout or cancel."""
        ...


class CommandError(Exception):
    """The command could not be started at all (no such program, no such user, not allowed)."""


class LocalRunner:
    where = "locally"

    def run(
        self,
        argv: list[str],
        ctx: StepContext,
        *,
        timeout: float | None,
        env: dict[str, str] | None = None,
        user: str | None = None,
        on_line: Callable[[str], None] | None = None,
    ) -> CommandResult:
        full_env = {name: os.environ[name] for name in INHERITED_ENV if name in os.environ}
        full_env.update(env or {})
        switch_to = _user_to_switch_to(user)
        if switch_to:
            full_env.update({"HOME": switch_to.pw_dir, "USER": switch_to.pw_name, "LOGNAME": switch_to.pw_name})
        tail: deque[str] = deque(maxlen=TAIL_LINES)
        sink = on_line or ctx.log

        def line(text: str) -> None:
            tail.append(text)
            sink(text)

        try:
            # cwd "/": the worker's directory may not be readable by `user`.
            finished = run_process(
                argv, ctx, line, env=full_env, cwd="/", user=switch_to.pw_name if switch_to else None, timeout=timeout
            )
        except (OSError, ValueError, subprocess.SubprocessError) as exc:
            raise CommandError(f"could not start {argv[0]}: {exc}") from exc
        return CommandResult(finished.exit_code, finished.stopped, list(tail))


def _user_to_switch_to(user: str | None) -> Any:
    """The passwd entry to switch to, or None when we already are `user` (or none is asked for)."""
    if not user:
        return None
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        raise CommandError(f"no such OS user {user!r} on this machine") from None
    if entry.pw_uid == os.geteuid():
        return None
    if os.geteuid() != 0:
        raise CommandError(f"cannot run commands as {user!r}: the worker runs as uid {os.geteuid()}, not root")
    return entry


SECRET_ENV = ("PGPASSWORD",)  # sent over SSH on stdin, never on the remote command line


class SshRunner:
    def __init__(self, connection: dict[str, Any], ctx: StepContext) -> None:
        from failover.engine.actions.ssh import SshTarget

        try:
            self.target = SshTarget(connection, ctx)
        except ValueError as exc:
            raise CommandError(f"run_on: {exc}") from None
        self.where = f"on {self.target.label.removeprefix('ssh ')} over SSH"

    def run(
        self,
        argv: list[str],
        ctx: StepContext,
        *,
        timeout: float | None,
        env: dict[str, str] | None = None,
        user: str | None = None,
        on_line: Callable[[str], None] | None = None,
    ) -> CommandResult:
        if user and user != self.target.username:
            raise CommandError(
                f"os_user {user!r}: over SSH commands run as the login user {self.target.username!r};"
                f" log in as {user!r} (run_on.ssh.username) or leave os_user out"
            )
        tail: deque[str] = deque(maxlen=TAIL_LINES)
        sink = on_line or ctx.log

        def line(text: str) -> None:
            tail.append(text)
            sink(text)

        plain = {k: v for k, v in (env or {}).items() if k not in SECRET_ENV}
        hidden = {k: v for k, v in (env or {}).items() if k in SECRET_ENV}
        limited = dataclasses.replace(ctx, timeout=timeout)
        ran = self.target.run_lines(argv, limited, line, env=plain, stdin_env=hidden)
        if ran.error:
            raise CommandError(ran.error)
        return CommandResult(ran.exit_code if ran.exit_code is not None else -1, ran.stopped, list(tail))


def command_runner(params: dict[str, Any], ctx: StepContext) -> CommandRunner:
    """The runner for a step's commands: over SSH with `run_on: {ssh: {...}}`, else this machine.
    CommandError (naming the parameter or secret) when run_on is unusable, before anything connects."""
    run_on = params.get("run_on")
    if not run_on:
        return LocalRunner()
    if not isinstance(run_on, dict) or not isinstance(run_on.get("ssh"), dict):
        raise CommandError("run_on: expected {ssh: {host, username, known_hosts_secret, key_secret, ...}}")
    return SshRunner(run_on["ssh"], ctx)
