"""The shell action: run an argv list (never a shell string) in its own process group.

Output is captured line by line (each line sent to `ctx.log`), capped in lines and
bytes; a line longer than MAX_LINE_BYTES is cut without ever being held in memory whole.
On timeout or cancel the whole process group gets SIGTERM, then SIGKILL after a grace
period, so no child or grandchild survives the step. `run_process` is that machinery on its own, for
actions that run commands of their own (failover/engine/actions/commands.py).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from failover.engine.actions import ActionResult, StepContext, executor

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


def _watch(
    proc: subprocess.Popen,
    ctx: StepContext,
    timeout: float | None,
    grace: float,
    exited: threading.Event,
    stopped: list[str],
) -> None:
    """Kill the process group on timeout or cancel; return as soon as the process exits."""
    deadline = time.monotonic() + timeout if timeout else None
    while not exited.wait(
        WATCH_INTERVAL if deadline is None else max(0.0, min(WATCH_INTERVAL, deadline - time.monotonic()))
    ):
        if ctx.cancelled.is_set():
            stopped.append("cancelled")
        elif deadline is not None and time.monotonic() >= deadline:
            stopped.append(f"timed out after {timeout:g}s")
        if stopped:
            _kill_group(proc, grace)
            return


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


def _read_output(proc: subprocess.Popen, on_line: Callable[[str], None]) -> None:
    """Pass the output to `on_line` line by line, in order, never holding more than MAX_LINE_BYTES + 1
    characters of a line: a process may print hundreds of MB without a newline. readline(limit) reads the
    pipe in chunks (the text wrapper decodes incrementally, errors="replace", and turns \r\n and \r into
    \n); the rest of a longer line is read in bounded pieces and dropped."""
    assert proc.stdout is not None
    while piece := proc.stdout.readline(MAX_LINE_BYTES + 1):
        line = piece.removesuffix("\n")
        if len(line) > MAX_LINE_BYTES:
            line = line[:MAX_LINE_BYTES] + TRUNCATED_LINE
            while not piece.endswith("\n") and (piece := proc.stdout.readline(DRAIN_CHUNK)):
                pass  # the rest of the line, up to and including its newline
        on_line(line)


def argv_of(value: Any) -> list[str] | None:
    """The argv to run, or None if `value` is not a non-empty list of strings. A templated
    "{{ params.port }}" keeps its native type: numbers are passed as text."""
    if not isinstance(value, list):
        return None
    argv = [str(a) if isinstance(a, int | float) and not isinstance(a, bool) else a for a in value]
    return argv if argv and all(isinstance(a, str) for a in argv) else None


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
) -> Finished:
    """Run `argv` (no shell) in its own process group, as `user` if given (needs root), stdout and stderr
    line by line to `on_line`; on `timeout` (seconds, None: none) or cancel kill the whole group. Returns
    when the process has exited. Raises OSError / ValueError when it cannot start."""
    as_user: dict[str, Any] = {"user": user, "group": user, "extra_groups": []} if user else {}
    proc = subprocess.Popen(
        argv,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        text=True,
        errors="replace",
        bufsize=1,
        **as_user,
    )
    reader = threading.Thread(target=_read_output, args=(proc, on_line), daemon=True)
    reader.start()
    # The process's exit is awaited with a blocking wait(), so a step ends the moment its
    # process does; a watcher thread enforces the timeout and cancel by killing the group.
    exited = threading.Event()
    stopped: list[str] = []
    watcher = threading.Thread(target=_watch, args=(proc, ctx, timeout, grace, exited, stopped), daemon=True)
    watcher.start()
    proc.wait()
    exited.set()
    watcher.join()
    reader.join(timeout=2)
    return Finished(proc.returncode, stopped[0] if stopped else "")


@executor("shell")
def run_shell(params: dict[str, Any], ctx: StepContext) -> ActionResult:
    argv = argv_of(params.get("argv"))
    if argv is None:
        return ActionResult(False, error="shell: argv must be a non-empty list of strings")
    env = {name: os.environ[name] for name in INHERITED_ENV if name in os.environ}
    env.update({str(k): str(v) for k, v in (params.get("env") or {}).items()})
    expected = params.get("expected_exit_codes") or [0]
    grace = float(params.get("kill_grace_seconds", KILL_GRACE_SECONDS))
    lines = OutputLines(ctx)
    from failover.engine.actions.commands import CommandError, _user_to_switch_to  # commands imports this module

    try:
        switch_to = _user_to_switch_to(params.get("user") or None)
    except CommandError as exc:
        return ActionResult(False, error=f"shell: {exc}")
    user = switch_to.pw_name if switch_to else None
    try:
        finished = run_process(
            argv,
            ctx,
            lines.add,
            env=env,
            cwd=params.get("cwd") or ("/" if user else None),
            user=user,
            timeout=ctx.timeout,
            grace=grace,
        )
    except (OSError, ValueError) as exc:
        return ActionResult(False, error=f"could not start {argv[0]!r}: {exc}")
    lines.finish()
    output = {"exit_code": finished.exit_code, "stdout": lines.text, "lines": lines.count}
    if finished.stopped:
        return ActionResult(False, output=output, error=f"{finished.stopped}; process group killed")
    if finished.exit_code not in expected:
        return ActionResult(False, output=output, error=f"exit code {finished.exit_code} (expected {expected})")
    return ActionResult(True, output=output)
