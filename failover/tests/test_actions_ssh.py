"""The ssh.run action (and run_remote) against a real OpenSSH server on 127.0.0.1 (failover/tests/sshd_support.py)."""

from __future__ import annotations

import logging
import os
import pwd
import random
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import asyncssh
import pytest

from core.exceptions import InvalidInput
from core.localservers.procs import alive, free_port
from failover.engine.actions import ActionResult, StepContext, run_action
from failover.engine.actions.shell import MAX_LINE_BYTES
from failover.engine.actions.ssh import run_remote
from failover.tests.engine_support import wait_for
from failover.tests.sshd_support import HOST, SSHServer, processes_of, processes_with, start_sshd, stop_sshd
from runbooks.actions import get_action

pytestmark = pytest.mark.realsystem  # real servers; runs once, in the SQLite pass


@pytest.fixture(scope="module")
def sshd() -> Iterator[SSHServer]:
    server = start_sshd()
    yield server
    stop_sshd(server)


def _ctx(values: dict[str, str], timeout: float | None = 20, log: list[str] | None = None) -> StepContext:
    def secret(name: str) -> str:
        if name not in values:
            raise InvalidInput(f"secret '{name}' is not defined")
        return values[name]

    sink = log if log is not None else []
    return StepContext(execution_id=1, step_key="ssh", timeout=timeout, secret=secret, log=sink.append)


def _run(params: dict, ctx: StepContext) -> ActionResult:
    errors = list(get_action("ssh.run").validator.iter_errors(params))
    assert errors == [], [e.message for e in errors]
    return run_action("ssh.run", params, ctx)


def test_a_command_runs_with_its_output_streamed_line_by_line(
    sshd: SSHServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    log: list[str] = []
    hostile = "x; touch pwned.txt $(id) `id` 'quoted' \"double\" \\ * ?"
    script = 'echo "first"; echo "to stderr" >&2; printf "%s\\n" "$1"; echo "$GREETING"; pwd; exit 3'
    params = sshd.connection(
        argv=["sh", "-c", script, "sh", hostile],
        env={"GREETING": "hello $USER; it's me"},
        cwd=str(sshd.home),
        expected_exit_codes=[3],
    )
    result = _run(params, _ctx(sshd.secrets(), log=log))
    assert result.ok, result.error
    assert log == ["first", "to stderr", hostile, "hello $USER; it's me", str(sshd.home)]
    assert result.output == {
        "host": HOST,
        "port": sshd.port,
        "exit_code": 3,
        "stdout": "\n".join(log),
        "lines": 5,
    }
    assert not (sshd.home / "pwned.txt").exists()
    assert "it's me" not in caplog.text  # asyncssh's own log would show the command line, env values included


def test_a_non_zero_exit_fails_naming_the_host(sshd: SSHServer) -> None:
    result = _run(sshd.connection(argv=["sh", "-c", "echo oops; exit 7"]), _ctx(sshd.secrets()))
    assert not result.ok
    assert result.error == f"ssh {sshd.username}@{HOST}:{sshd.port}: exit code 7 (expected [0])"
    assert result.output["exit_code"] == 7
    assert result.output["stdout"] == "oops"
    missing = _run(sshd.connection(argv=["no-such-program-here"]), _ctx(sshd.secrets()))
    assert missing.error.endswith("exit code 127 (expected [0])")


def test_output_keeps_the_shell_actions_bounds(sshd: SSHServer) -> None:
    log: list[str] = []
    script = "head -c 100000 /dev/zero | tr '\\0' y; echo; echo after"
    result = _run(sshd.connection(argv=["sh", "-c", script]), _ctx(sshd.secrets(), log=log))
    assert result.ok, result.error
    assert log == ["y" * MAX_LINE_BYTES + " …[line truncated]", "after"]


def test_a_password_logs_in_too(sshd: SSHServer) -> None:
    if sshd.password is None:
        pytest.skip("the tests run as a normal user: sshd logs in as that user, whose password we do not know")
    params = sshd.connection(argv=["id", "-un"])
    del params["key_secret"]
    params["password_secret"] = "ssh-password"
    log: list[str] = []
    result = _run(params, _ctx(sshd.secrets(), log=log))
    assert result.ok, result.error
    assert log == [sshd.username]


def test_a_host_key_mismatch_fails_and_never_runs_the_command(sshd: SSHServer) -> None:
    other = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode().strip()
    marker = sshd.home / "ran-despite-mismatch"
    values = {**sshd.secrets(), "known-hosts": f"[{HOST}]:{sshd.port} {other}\n"}
    result = _run(sshd.connection(argv=["touch", str(marker)]), _ctx(values))
    assert not result.ok
    assert result.error == (
        f"ssh {sshd.username}@{HOST}:{sshd.port}: host key verification failed: the host's key does not match "
        "known_hosts_secret 'known-hosts'; nothing was run"
    )
    assert not marker.exists()
    # The same command with the right key does run (so the marker proves something).
    assert _run(sshd.connection(argv=["touch", str(marker)]), _ctx(sshd.secrets())).ok
    assert marker.exists()
    marker.unlink()


def test_a_wrong_key_or_password_is_refused(sshd: SSHServer) -> None:
    stranger = asyncssh.generate_private_key("ssh-ed25519").export_private_key().decode()
    marker = sshd.home / "ran-with-wrong-key"
    result = _run(sshd.connection(argv=["touch", str(marker)]), _ctx({**sshd.secrets(), "ssh-key": stranger}))
    assert result.error == (
        f"ssh {sshd.username}@{HOST}:{sshd.port}: authentication as {sshd.username} failed "
        "(key_secret 'ssh-key' refused)"
    )
    params = sshd.connection(argv=["touch", str(marker)])
    del params["key_secret"]
    params["password_secret"] = "pw"
    wrong = _run(params, _ctx({**sshd.secrets(), "pw": "not-the-password"}))
    assert wrong.error == (
        f"ssh {sshd.username}@{HOST}:{sshd.port}: authentication as {sshd.username} failed "
        "(password_secret 'pw' refused)"
    )
    assert "not-the-password" not in repr(wrong)
    assert not marker.exists()


def test_an_unreachable_host_fails_within_its_timeout_naming_host_and_port(sshd: SSHServer) -> None:
    closed = free_port()
    values = {**sshd.secrets(), "known-hosts": sshd.known_hosts.replace(f":{sshd.port} ", f":{closed} ")}
    refused = _run(sshd.connection(port=closed, argv=["true"]), _ctx(values))
    assert refused.error.startswith(f"ssh {sshd.username}@{HOST}:{closed}: could not connect: ")
    with socket.socket() as silent:  # accepts the TCP connection (backlog) but never says a word
        silent.bind((HOST, 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        values = {**sshd.secrets(), "known-hosts": sshd.known_hosts.replace(f":{sshd.port} ", f":{port} ")}
        started = time.monotonic()
        hung = _run(sshd.connection(port=port, argv=["true"], connect_timeout=1), _ctx(values))
        assert time.monotonic() - started < 4
    assert hung.error == f"ssh {sshd.username}@{HOST}:{port}: no answer within 1s"
    started = time.monotonic()
    step_bound = _run(sshd.connection(port=port, argv=["true"]), _ctx(values, timeout=1))  # connect_timeout 10
    assert time.monotonic() - started < 4
    assert step_bound.error.startswith(f"ssh {sshd.username}@{HOST}:{port}: ")


def _sleeper(sshd: SSHServer) -> tuple[list[str], str, Path]:
    """A remote shell that ignores TERM (so only the KILL that follows ends it) with a sleep below it; both
    command lines hold `token`, and the sleep's pid is written to the returned file."""
    token = f"300.{random.randrange(10**6):06d}"
    pid_file = sshd.home / f"sleep-{token}.pid"
    script = f"trap '' TERM; sleep {token} & echo $! > {pid_file}; echo started; wait"
    return ["sh", "-c", script], token, pid_file


def _nothing_left(sshd: SSHServer, token: str, pid_file: Path) -> None:
    """Neither the remote shell nor its sleep survives; as root (sshd runs as its own user) also no session
    process of that user but the listening sshd."""
    sleep_pid = int(pid_file.read_text())
    # Waits on the processes, up to 15 s: sshd tears a session down in well under a second, but not always
    # on a loaded 2-core machine.
    wait_for(lambda: not alive(sleep_pid) and not processes_with(token), timeout=15)
    if os.geteuid() == 0:
        uid = pwd.getpwnam(sshd.username).pw_uid
        wait_for(lambda: processes_of(uid) == [sshd.pid], timeout=15)


def test_timeout_kills_the_remote_process_group(sshd: SSHServer) -> None:
    argv, token, pid_file = _sleeper(sshd)
    log: list[str] = []
    params = {**sshd.connection(argv=argv), "kill_grace_seconds": 0.5}
    started = time.monotonic()
    result = run_action("ssh.run", params, _ctx(sshd.secrets(), timeout=2, log=log))
    assert time.monotonic() - started < 8
    assert not result.ok
    assert result.error.startswith(f"ssh {sshd.username}@{HOST}:{sshd.port}: timed out after 2s; remote process group ")
    assert result.error.endswith(" killed")
    assert log == ["started"]
    _nothing_left(sshd, token, pid_file)


def _started_sleeper(
    sshd: SSHServer, timeout: float, grace: float
) -> tuple[StepContext, threading.Thread, list[ActionResult], str, Path]:
    """_sleeper's command run by run_remote on a thread of its own, once it printed "started": its context (to
    cancel), the thread, the list its result lands in, the token and the sleep's pid file."""
    argv, token, pid_file = _sleeper(sshd)
    log: list[str] = []
    ctx = _ctx(sshd.secrets(), timeout=timeout, log=log)
    results: list[ActionResult] = []
    runner = threading.Thread(
        target=lambda: results.append(run_remote(argv, ctx, sshd.connection(), kill_grace_seconds=grace))
    )
    runner.start()
    wait_for(lambda: log == ["started"], timeout=15)
    return ctx, runner, results, token, pid_file


def test_cancel_mid_command_kills_the_remote_process_group(sshd: SSHServer) -> None:
    ctx, runner, results, token, pid_file = _started_sleeper(sshd, timeout=60, grace=0.5)
    assert alive(int(pid_file.read_text()))  # the sleep runs on the host
    ctx.cancelled.set()
    runner.join(timeout=10)
    assert not runner.is_alive()
    [result] = results
    assert result.error.startswith(f"ssh {sshd.username}@{HOST}:{sshd.port}: cancelled; remote process group ")
    assert result.error.endswith(" killed")
    _nothing_left(sshd, token, pid_file)


def test_a_fencing_coordinators_deadline_cuts_the_grace_before_the_remote_kill(sshd: SSHServer) -> None:
    """A coordinator that fences itself sets its cancel event with a deadline (lease.Fence.kill_by): a remote
    command that ignores TERM is KILLed by then, not after the step's grace of a minute."""
    ctx, runner, results, token, pid_file = _started_sleeper(sshd, timeout=120, grace=60)
    deadline = time.monotonic() + 1.0
    ctx.cancelled.kill_by = lambda: deadline  # type: ignore[attr-defined]
    ctx.cancelled.set()
    runner.join(timeout=20)  # the grace of 60 s would still be running
    assert not runner.is_alive()
    [result] = results
    assert result.error.endswith(" killed")
    _nothing_left(sshd, token, pid_file)


def test_missing_or_wrong_kind_of_secret_fails_before_connecting(sshd: SSHServer) -> None:
    with socket.socket() as listener:  # the host: it must never see a connection
        listener.bind((HOST, 0))
        listener.listen(8)
        listener.setblocking(False)
        port = listener.getsockname()[1]
        label = f"ssh {sshd.username}@{HOST}:{port}"
        known = sshd.known_hosts.replace(f":{sshd.port} ", f":{port} ")
        public = known.split(" ", 1)[1]  # "ssh-ed25519 AAAA…": a public key, not a known_hosts line
        encrypted = (
            asyncssh.generate_private_key("ssh-ed25519").export_private_key("pkcs8-pem", passphrase="phrase-1").decode()
        )
        cases = [
            ({"known-hosts": known}, "key_secret 'ssh-key': secret 'ssh-key' is not defined"),
            ({"ssh-key": sshd.client_key}, "known_hosts_secret 'known-hosts': secret 'known-hosts' is not defined"),
            ({"known-hosts": known, "ssh-key": public}, "key_secret 'ssh-key' is not a private key (OpenSSH or PEM)"),
            (
                {"known-hosts": known, "ssh-key": encrypted},
                "key_secret 'ssh-key' is an encrypted private key (an unencrypted one is needed)",
            ),
            (
                {"known-hosts": sshd.client_key, "ssh-key": sshd.client_key},
                "known_hosts_secret 'known-hosts' is not in known_hosts format",
            ),
            (
                {"known-hosts": public, "ssh-key": sshd.client_key},
                f"known_hosts_secret 'known-hosts' has no key for [{HOST}]:{port}",
            ),
            (
                {"known-hosts": known.replace(f"[{HOST}]:{port}", "db.example"), "ssh-key": sshd.client_key},
                f"known_hosts_secret 'known-hosts' has no key for [{HOST}]:{port}",
            ),
        ]
        for values, error in cases:
            result = _run(sshd.connection(port=port, argv=["true"]), _ctx(values))
            assert result.error == f"{label}: {error}"
            assert not any(line in result.error for value in values.values() for line in value.splitlines() if line)
        with pytest.raises(BlockingIOError):
            listener.accept()  # nothing connected


def test_the_schema_needs_exactly_one_credential_and_valid_env_names(sshd: SSHServer) -> None:
    validator = get_action("ssh.run").validator
    both = {**sshd.connection(argv=["true"]), "password_secret": "ssh-password"}
    neither = {k: v for k, v in sshd.connection(argv=["true"]).items() if k != "key_secret"}
    for params in (both, neither):
        [error] = list(validator.iter_errors(params))
        assert error.validator == "oneOf"
    assert list(validator.iter_errors({**sshd.connection(argv=["true"]), "env": {"A B": "x"}}))
    assert list(validator.iter_errors({**sshd.connection(argv=["true"]), "argv": "true"}))
    assert not list(validator.iter_errors(sshd.connection(argv=["true"], port="{{ params.port }}")))


def test_a_secret_with_allowed_hosts_keeps_the_step_on_them(sshd: SSHServer) -> None:
    ctx = _ctx(sshd.secrets())
    ctx.allowed_hosts = {"ssh-key": ["db-standby.dc2.example"]}
    result = _run(sshd.connection(argv=["true"]), ctx)
    assert result.error == (
        f"ssh {sshd.username}@{HOST}:{sshd.port}: secret 'ssh-key' may not be sent to {HOST}:{sshd.port} "
        "(allowed hosts: db-standby.dc2.example)"
    )
