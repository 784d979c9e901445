"""The shell action: run an argv list (never a shell string) in its own process group.

Output is captured line by line (each line sent to `ctx.log`), capped in lines and
bytes; a line longer than MAX_LINE_BYTES is cut without ever being held in memory whole.
On timeout or cancel the whole process group gets SIGTERM, then SIGKILL after a grace
period, so no child or grandchild survives the step. The grace is cut short when the cancel event carries a
deadline (`kill_by()`, monotonic): a coordinator's step must be gone before its lease could expire (issue 15,
fencing: a step that ignores SIGTERM must not outlive the lease and run beside the next coordinator's).
`run_process` is that machinery on its own, for
actions that run commands of their own (failover/engine/actions/commands.py).
"""

from __future__ import annotations

import codecs
import contextlib
import io
import locale
import os
import select
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from failover.engine.actions import ActionResult, Started, StartFailed, StepContext, executor, starter

MAX_LINES = 10_000
MAX_LINE_BYTES = 4_096
MAX_OUTPUT_BYTES = 64 * 1024
DRAIN_CHUNK = 64 * 1024  # characters read at a time from the part of a line that is dropped
KILL_GRACE_SECONDS = 5.0
WATCH_INTERVAL = 0.05  # how often the watcher looks at the cancel flag
TRUNCATED_LINE = " …[line truncated]"
# What a step's process inherits from the worker; the rest (secrets, tokens) stays out.
INHERITED_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR", "USER", "LOGNAME")


def _kill_group(proc: subprocess.Popen, grace: float) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=grace)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)  # also whatever the leader left behind
    proc.wait()


def grace_within(cancelled: Any, grace: float) -> float:
    """`grace`, shortened so that SIGKILL comes by the deadline the cancel event carries, if any."""
    kill_by = getattr(cancelled, "kill_by", None)
    if kill_by is None:
        return grace
    return max(0.0, min(grace, kill_by() - time.monotonic()))


class OutputLines:
    """A process's output, line by line: each line sent to `ctx.log` (at most MAX_LINES), the first
    MAX_OUTPUT_BYTES kept for the step's output, a line longer than MAX_LINE_BYTES cut. Lines come whole
    (`add`) or in chunks of any size (`feed`, then `close`; the ssh action reads a channel that way): of a
    longer line only its first MAX_LINE_BYTES + 1 characters are ever held, the rest is dropped as it arrives.
    """

    def __init__(self, ctx: StepContext) -> None:
        self.ctx = ctx
        self.captured: list[str] = []
        self.count = 0
        self._bytes = 0
        self._partial = ""  # the start of the current line (feed), at most MAX_LINE_BYTES + 1 characters
        self._dropping = False  # the current line is already too long: the rest of it is dropped

    def add(self, line: str) -> None:
        if len(line) > MAX_LINE_BYTES:
            line = line[:MAX_LINE_BYTES] + TRUNCATED_LINE
        self.count += 1
        if self.count > MAX_LINES:
            return  # the caller keeps draining so the process never blocks on a full pipe
        self.ctx.log(line)
        if self._bytes < MAX_OUTPUT_BYTES:
            self.captured.append(line)
            self._bytes += len(line) + 1

    def feed(self, chunk: str) -> None:
        start = 0
        while True:
            end = chunk.find("\n", start)
            piece_end = len(chunk) if end < 0 else end
            if not self._dropping:
                room = MAX_LINE_BYTES + 1 - len(self._partial)
                self._partial += chunk[start : min(piece_end, start + room)]
                self._dropping = len(self._partial) > MAX_LINE_BYTES
            if end < 0:
                return
            self.add(self._partial.removesuffix("\r"))
            self._partial, self._dropping = "", False
            start = end + 1

    def close(self) -> None:
        """The end of the output: a last line without a newline is a line too."""
        if self._partial:
            self.add(self._partial.removesuffix("\r"))
        self._partial, self._dropping = "", False

    def finish(self) -> None:
        if self.count > MAX_LINES:
            self.ctx.log(f"[output truncated: {self.count - MAX_LINES} more lines not kept]")

    @property
    def text(self) -> str:
        return "\n".join(self.captured)


def argv_of(value: Any) -> list[str] | None:
    """The argv to run, or None if `value` is not a non-empty list of strings. A templated
    "{{ params.port }}" keeps its native type: numbers are passed as text."""
    if not isinstance(value, list):
        return None
    argv = [str(a) if isinstance(a, int | float) and not isinstance(a, bool) else a for a in value]
    return argv if argv and all(isinstance(a, str) for a in argv) else None


def spawn(argv: list[str], *, env: dict[str, str], cwd: str | None, user: str | None) -> subprocess.Popen:
    """`argv` started in its own process group (and session), as `user` if given, stdin from /dev/null, stdout
    and stderr into one pipe. Raises OSError / ValueError when it cannot start."""
    as_user: dict[str, Any] = {"user": user, "group": user, "extra_groups": []} if user else {}
    return subprocess.Popen(
        argv,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        bufsize=0,
        **as_user,
    )


@dataclass
class Finished:
    exit_code: int
    stopped: str  # "" when the process ended by itself; else "cancelled" or "timed out after Ns"


def run_process(
    argv: list[str],
    ctx: StepContext,
    on_line: Callable[[str], None],
    *,
    env: dict[str, str],
    cwd: str | None = None,
    user: str | None = None,
    timeout: float | None = None,
    grace: float = KILL_GRACE_SECONDS,
    started: RunningProcess | None = None,
) -> Finished:
    """Run `argv` (no shell) in its own process group, as `user` if given (needs root), stdout and stderr
    line by line to `on_line`; on `timeout` (seconds, None: none) or cancel kill the whole group. Returns
    when the process has exited. Raises OSError / ValueError when it cannot start. `started`: the process is
    already running (start_shell), to be watched; the timeout counts from its start.

    One thread does it all (the caller's): it waits with select() on the output pipe, on a pidfd of
    the process (readable when it exits) and on the cancel event when it has a file descriptor (WakingEvent),
    until the deadline; an event without one (a plain threading.Event) is looked at every WATCH_INTERVAL. No
    helper threads: on a busy machine every thread that has to be woken adds a scheduling delay to the step."""
    if started is None:
        proc, began = spawn(argv, env=env, cwd=cwd, user=user), time.monotonic()
    else:
        proc, began = started.proc, started.at
    assert proc.stdout is not None
    try:
        pidfd: int | None = os.pidfd_open(proc.pid)
    except (AttributeError, OSError):  # no pidfd (old kernel): a short select() timeout notices the exit
        pidfd = None
    lines = _Lines(on_line)
    out = proc.stdout.fileno()
    cancel_fd = ctx.cancelled.fileno() if hasattr(ctx.cancelled, "fileno") else None
    if pidfd is None:
        interval: float | None = 0.01  # the exit is noticed by looking
    elif cancel_fd is None:
        interval = WATCH_INTERVAL  # the cancel flag is looked at
    else:
        interval = None  # select() wakes for the output, the exit and the cancel: only the deadline bounds it
    deadline = began + timeout if timeout else None
    stopped = ""
    try:
        while True:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            waits = [w for w in (interval, left) if w is not None]
            wait = min(waits) if waits else None
            watched = [out] if lines.open else []
            if pidfd is not None:
                watched.append(pidfd)
            if cancel_fd is not None:
                watched.append(cancel_fd)
            ready = select.select(watched, [], [], wait)[0]
            if out in ready:
                lines.read(out)
            if (pidfd in ready) if pidfd is not None else (proc.poll() is not None):
                proc.wait()
                break
            if ctx.cancelled.is_set():
                stopped = "cancelled"
            elif deadline is not None and time.monotonic() >= deadline:
                stopped = f"timed out after {timeout:g}s"
            if stopped:
                _kill_group(proc, grace_within(ctx.cancelled, grace))
                break
        # What the process wrote before it ended; a child it left behind holding the pipe gets 2 s.
        drain_until = time.monotonic() + 2
        while lines.open and (left := drain_until - time.monotonic()) > 0:
            if select.select([out], [], [], left)[0]:
                lines.read(out)
        lines.close()
    finally:
        proc.stdout.close()
        if pidfd is not None:
            os.close(pidfd)
    return Finished(proc.returncode, stopped)


class _Lines:
    """A process's output read from its pipe in chunks, decoded (errors replaced, \\r\\n and \\r read as
    \\n, like a text-mode pipe) and passed to `on_line` line by line; of a line longer than MAX_LINE_BYTES
    only its first MAX_LINE_BYTES + 1 characters are ever held, the rest is dropped as it arrives."""

    def __init__(self, on_line: Callable[[str], None]) -> None:
        self.on_line = on_line
        self.decoder = io.IncrementalNewlineDecoder(
            codecs.getincrementaldecoder(locale.getpreferredencoding(False))(errors="replace"), translate=True
        )
        self.partial = ""
        self.dropping = False
        self.open = True

    def read(self, fd: int) -> None:
        chunk = os.read(fd, DRAIN_CHUNK)
        if not chunk:
            self.open = False
            self._feed(self.decoder.decode(b"", final=True))
            return
        self._feed(self.decoder.decode(chunk))

    def _feed(self, text: str) -> None:
        start = 0
        while True:
            end = text.find("\n", start)
            piece_end = len(text) if end < 0 else end
            if not self.dropping:
                room = MAX_LINE_BYTES + 1 - len(self.partial)
                self.partial += text[start : min(piece_end, start + room)]
                self.dropping = len(self.partial) > MAX_LINE_BYTES
            if end < 0:
                return
            self._line()
            start = end + 1

    def _line(self) -> None:
        line = self.partial
        if len(line) > MAX_LINE_BYTES:
            line = line[:MAX_LINE_BYTES] + TRUNCATED_LINE
        self.partial, self.dropping = "", False
        self.on_line(line)

    def close(self) -> None:
        """The end of the output: a last line without a newline is a line too."""
        if self.partial:
            self._line()


@dataclass
class ShellCall:
    """A shell step's command, as its parameters give it."""

    argv: list[str]
    env: dict[str, str]
    cwd: str | None
    user: str | None
    expected: list[int]
    grace: float


def shell_call(params: dict[str, Any]) -> ShellCall | str:
    """The command of a shell step's parameters, or what is wrong with them."""
    argv = argv_of(params.get("argv"))
    if argv is None:
        return "shell: argv must be a non-empty list of strings"
    env = {name: os.environ[name] for name in INHERITED_ENV if name in os.environ}
    env.update({str(k): str(v) for k, v in (params.get("env") or {}).items()})
    from failover.engine.actions.commands import CommandError, _user_to_switch_to  # commands imports this module

    try:
        switch_to = _user_to_switch_to(params.get("user") or None)
    except CommandError as exc:
        return f"shell: {exc}"
    user = switch_to.pw_name if switch_to else None
    return ShellCall(
        argv=argv,
        env=env,
        cwd=params.get("cwd") or ("/" if user else None),
        user=user,
        expected=params.get("expected_exit_codes") or [0],
        grace=float(params.get("kill_grace_seconds", KILL_GRACE_SECONDS)),
    )


@dataclass
class RunningProcess(Started):
    """A shell step's process started by the coordinator (start_shell), for run_shell to watch."""

    proc: subprocess.Popen
    call: ShellCall
    at: float  # monotonic time of its start
    cancelled: Any  # the step's cancel event (its kill_by deadline bounds the grace)

    def abandon(self) -> None:
        _kill_group(self.proc, grace_within(self.cancelled, self.call.grace))
        if self.proc.stdout is not None:
            self.proc.stdout.close()


@starter("shell")
def start_shell(params: dict[str, Any], ctx: StepContext) -> Started | None:
    """The step's process, started on the coordinator's thread as soon as its start is committed."""
    call = shell_call(params)
    if isinstance(call, str):
        return None  # the executor reports what is wrong
    try:
        proc = spawn(call.argv, env=call.env, cwd=call.cwd, user=call.user)
    except (OSError, ValueError) as exc:
        return StartFailed(f"could not start {call.argv[0]!r}: {exc}")
    return RunningProcess(proc, call, time.monotonic(), ctx.cancelled)


@executor("shell")
def run_shell(params: dict[str, Any], ctx: StepContext) -> ActionResult:
    started = ctx.started if isinstance(ctx.started, RunningProcess) else None
    call = started.call if started is not None else shell_call(params)
    if isinstance(call, str):
        return ActionResult(False, error=call)
    lines = OutputLines(ctx)
    try:
        finished = run_process(
            call.argv,
            ctx,
            lines.add,
            env=call.env,
            cwd=call.cwd,
            user=call.user,
            timeout=ctx.timeout,
            grace=call.grace,
            started=started,
        )
    except (OSError, ValueError) as exc:
        return ActionResult(False, error=f"could not start {call.argv[0]!r}: {exc}")
    lines.finish()
    output = {"exit_code": finished.exit_code, "stdout": lines.text, "lines": lines.count}
    if finished.stopped:
        return ActionResult(False, output=output, error=f"{finished.stopped}; process group killed")
    if finished.exit_code not in call.expected:
        return ActionResult(False, output=output, error=f"exit code {finished.exit_code} (expected {call.expected})")
    return ActionResult(True, output=output)
