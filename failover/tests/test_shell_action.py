"""The shell action runs argv lists in their own process group and leaves nothing behind."""

from __future__ import annotations

import gc
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from failover.engine.actions import StartFailed, StepContext, WakingEvent, abandon_unclaimed, run_action, start_action
from failover.engine.actions import shell as shell_module


def _ctx(timeout: float | None = None, lines: list[str] | None = None) -> StepContext:
    sink = lines if lines is not None else []
    return StepContext(execution_id=1, step_key="s", timeout=timeout, log=sink.append)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split()[2] == "Z")


def test_output_is_captured_line_by_line_and_exit_code_checked():
    lines: list[str] = []
    result = run_action("shell", {"argv": ["sh", "-c", "echo one; echo two; exit 3"]}, _ctx(lines=lines))
    assert not result.ok
    assert result.error == "exit code 3 (expected [0])"
    assert lines == ["one", "two"]
    assert result.output["stdout"] == "one\ntwo"
    ok = run_action("shell", {"argv": ["sh", "-c", "exit 3"], "expected_exit_codes": [3]}, _ctx())
    assert ok.ok


def test_a_value_with_shell_metacharacters_stays_one_argument(tmp_path: Path):
    hostile = "x; touch pwned.txt"
    lines: list[str] = []
    result = run_action("shell", {"argv": ["printf", "%s\\n", hostile], "cwd": str(tmp_path)}, _ctx(lines=lines))
    assert result.ok
    assert lines == [hostile]
    assert not (tmp_path / "pwned.txt").exists()


def test_timeout_kills_the_whole_process_tree_including_grandchildren(tmp_path: Path):
    pid_file = tmp_path / "grandchild.pid"
    # The child starts a grandchild that ignores SIGTERM, records its pid, and both sleep.
    script = f"sh -c 'trap \"\" TERM; echo $$ > {pid_file}; sleep 60' & sleep 60"
    started = time.monotonic()
    result = run_action("shell", {"argv": ["sh", "-c", script], "kill_grace_seconds": 0.5}, _ctx(timeout=0.5))
    elapsed = time.monotonic() - started
    assert not result.ok
    assert result.error.startswith("timed out after 0.5s")
    assert elapsed < 5
    grandchild = int(pid_file.read_text())
    deadline = time.monotonic() + 3
    while _alive(grandchild) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(grandchild), "the grandchild survived the timeout"


def test_cancel_stops_a_running_command():
    ctx = _ctx()
    threading.Timer(0.3, ctx.cancelled.set).start()
    result = run_action("shell", {"argv": ["sleep", "30"], "kill_grace_seconds": 0.5}, ctx)
    assert not result.ok
    assert result.error.startswith("cancelled")


def test_a_waking_cancel_stops_a_command_at_once_without_the_step_polling(monkeypatch):
    """The coordinator's cancel event (a WakingEvent) wakes the step's select(): a step waiting on a quiet process
    sleeps until its output, its exit or the cancel, instead of waking every WATCH_INTERVAL to look at a flag."""
    calls: list[float | None] = []
    real_select = shell_module.select.select

    def counting_select(r, w, x, timeout=None):
        calls.append(timeout)
        return real_select(r, w, x, timeout)

    monkeypatch.setattr(shell_module.select, "select", counting_select)
    ctx = StepContext(execution_id=1, step_key="s", cancelled=WakingEvent())
    threading.Timer(0.5, ctx.cancelled.set).start()  # 10 WATCH_INTERVALs
    result = run_action("shell", {"argv": ["sleep", "30"], "kill_grace_seconds": 0.5}, ctx)
    assert result.error.startswith("cancelled")
    assert calls[0] is None  # no timeout: woken by the cancel itself
    assert len(calls) <= 3  # that wait, then reading the closed output (the old loop: 10 or more)


def test_a_waking_event_is_readable_once_set_and_never_cleared():
    event = WakingEvent()
    assert not shell_module.select.select([event], [], [], 0)[0]
    event.set()
    event.set()
    assert event.is_set() and shell_module.select.select([event], [], [], 0)[0] == [event]
    with pytest.raises(TypeError):
        event.clear()
    read = event.fileno()
    del event
    gc.collect()
    with pytest.raises(OSError):
        os.fstat(read)  # the pipe went with the event


def test_worker_secrets_are_not_inherited(monkeypatch):
    monkeypatch.setenv("DRPLAN_SECRET_KEY", "do-not-leak")
    lines: list[str] = []
    result = run_action("shell", {"argv": ["env"], "env": {"TARGET": "dr"}}, _ctx(lines=lines))
    assert result.ok
    assert "TARGET=dr" in lines
    assert not any("do-not-leak" in line for line in lines)


def test_missing_program_is_a_failed_step_not_a_crash():
    result = run_action("shell", {"argv": ["/nonexistent/tool"]}, _ctx())
    assert not result.ok
    assert "could not start '/nonexistent/tool'" in result.error


def test_the_process_the_coordinator_started_is_the_one_the_step_watches():
    """The coordinator starts a shell step's process itself (start_action) and the pool thread's executor takes
    that process over: its output and exit code are the step's, and no second process is started."""
    lines: list[str] = []
    ctx = _ctx(lines=lines)
    start_action("shell", {"argv": ["sh", "-c", "echo $$; exit 4"], "expected_exit_codes": [4]}, ctx)
    started = ctx.started
    assert isinstance(started, shell_module.RunningProcess)
    result = run_action("shell", {"argv": ["sh", "-c", "echo $$; exit 4"], "expected_exit_codes": [4]}, ctx)
    assert result.ok, result.error
    assert lines == [str(started.proc.pid)]
    assert result.output["exit_code"] == 4


def test_a_command_that_cannot_start_fails_the_step_at_its_start():
    ctx = _ctx()
    start_action("shell", {"argv": ["/nonexistent/tool"]}, ctx)
    assert isinstance(ctx.started, StartFailed)
    result = run_action("shell", {"argv": ["/nonexistent/tool"]}, ctx)
    assert not result.ok
    assert "could not start '/nonexistent/tool'" in result.error
    # Parameters the executor refuses start nothing either: it reports them as before.
    bad = _ctx()
    start_action("shell", {"argv": "rm -rf /"}, bad)
    assert bad.started is None
    assert run_action("shell", {"argv": "rm -rf /"}, bad).error == "shell: argv must be a non-empty list of strings"


def test_a_started_process_whose_step_never_ran_is_killed_with_its_group(tmp_path: Path):
    """A coordinator that stops while a step it started is still queued for a pool thread (the pool shut down with
    its queued tasks cancelled) leaves no process behind: the step's process group is killed and reaped."""
    pid_file = tmp_path / "grandchild.pid"
    params = {"argv": ["sh", "-c", f"sleep 60 & echo $! > {pid_file}; wait"], "kill_grace_seconds": 0.5}
    ctx = _ctx()
    release = threading.Event()
    pool = ThreadPoolExecutor(max_workers=1)
    pool.submit(release.wait, 30)  # the only thread is busy: the step's task stays queued
    start_action("shell", params, ctx)
    ran = []
    task = pool.submit(lambda: ran.append(run_action("shell", params, ctx)))
    task.add_done_callback(lambda t: abandon_unclaimed(ctx, t))
    deadline = time.monotonic() + 10
    while not pid_file.exists() or not pid_file.read_text().strip():
        assert time.monotonic() < deadline, "the started process never ran"
        time.sleep(0.02)
    grandchild = int(pid_file.read_text())
    pool.shutdown(wait=False, cancel_futures=True)
    release.set()
    assert task.cancelled() and not ran
    assert ctx.started.proc.returncode is not None  # reaped
    deadline = time.monotonic() + 10
    while _alive(grandchild) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not _alive(grandchild)


def test_a_huge_line_without_newline_is_truncated_without_being_buffered():
    """200 MB with no newline: the reader keeps at most a line's cap in memory, not the line."""
    import tracemalloc

    from failover.engine.actions.shell import MAX_LINE_BYTES

    lines: list[str] = []
    script = "head -c 209715200 /dev/zero | tr '\\000' x; printf '\\nafter\\n'"
    tracemalloc.start()
    try:
        started = time.monotonic()
        result = run_action("shell", {"argv": ["sh", "-c", script]}, _ctx(timeout=60, lines=lines))
        elapsed = time.monotonic() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.ok, result.error
    assert lines == ["x" * MAX_LINE_BYTES + " …[line truncated]", "after"]
    assert result.output["lines"] == 2
    assert result.output["stdout"] == "x" * MAX_LINE_BYTES + " …[line truncated]\nafter"
    assert peak < 4 * 1024 * 1024, f"peak {peak / 1e6:.1f} MB while reading"
    assert elapsed < 30


def test_lines_keep_their_order_and_undecodable_bytes_are_replaced():
    lines: list[str] = []
    script = "printf 'one\\r\\ntwo\\n'; head -c 5000 /dev/zero | tr '\\000' y; printf '\\nbad \\377 byte\\nlast'"
    result = run_action("shell", {"argv": ["sh", "-c", script]}, _ctx(lines=lines))
    assert result.ok
    assert lines == ["one", "two", "y" * 4096 + " …[line truncated]", "bad \ufffd byte", "last"]
    assert result.output["lines"] == 5


def test_output_beyond_the_line_cap_is_counted_not_kept():
    from failover.engine.actions.shell import MAX_LINES

    lines: list[str] = []
    result = run_action("shell", {"argv": ["seq", str(MAX_LINES + 5)]}, _ctx(lines=lines))
    assert result.ok
    assert len(lines) == MAX_LINES + 1
    assert lines[-2:] == [str(MAX_LINES), "[output truncated: 5 more lines not kept]"]
    assert result.output["lines"] == MAX_LINES + 5


def test_output_lines_from_chunks_keep_the_same_bounds():
    """The ssh action reads a channel in chunks of any size: lines split across chunks, \\r\\n, a last
    line without a newline, and a huge line cut with at most MAX_LINE_BYTES + 1 characters held."""
    from failover.engine.actions.shell import MAX_LINE_BYTES, OutputLines

    logged: list[str] = []
    lines = OutputLines(_ctx(lines=logged))
    for chunk in ["on", "e\r\ntw", "o\n", "x" * 3000, "x" * 3000, "y" * 100_000, "\nla", "st"]:
        lines.feed(chunk)
        assert len(lines._partial) <= MAX_LINE_BYTES + 1
    lines.close()
    lines.finish()
    assert logged == ["one", "two", "x" * MAX_LINE_BYTES + " …[line truncated]", "last"]
    assert lines.count == 4
    assert lines.text == "\n".join(logged)


def test_user_runs_the_command_as_that_os_user():
    import pwd

    me = pwd.getpwuid(os.geteuid()).pw_name
    same = run_action("shell", {"argv": ["id", "-un"], "user": me}, _ctx())
    assert same.ok and same.output["stdout"] == me  # already that user: nothing to switch
    assert run_action("shell", {"argv": ["id", "-un"], "user": ""}, _ctx()).output["stdout"] == me
    missing = run_action("shell", {"argv": ["id", "-un"], "user": "no-such-user-x"}, _ctx())
    assert not missing.ok and missing.error == "shell: no such OS user 'no-such-user-x' on this machine"
    if os.geteuid() != 0:
        pytest.skip("switching to another user needs root")
    from core.localservers.procs import server_user

    user = server_user()  # pgserver's unprivileged user (its own group, as run_process expects)
    other = run_action("shell", {"argv": ["id", "-un"], "user": user}, _ctx())
    assert other.ok and other.output["stdout"] == user
