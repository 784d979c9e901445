"""postgres.rewind and postgres.rebuild_standby: make the node that holds `data_dir` a standby of the new
primary (the server of `source_dsn_secret`).

They run programs on that node through the step's command runner (commands.py: this machine, or over SSH
with `run_on: {ssh: {...}}`), as `os_user`, from `pg_bin_dir` (else PATH), argv lists only:

- stop the server if it runs (`pg_ctl stop -m fast`: pg_rewind needs it stopped);
- rewind: `pg_rewind -R` from the new primary; if that fails (and `fallback: basebackup`, the default), or
  for rebuild_standby always: `pg_basebackup -R` into `<data_dir>.drplan-new`, then the old directory is
  moved aside to `<data_dir>.old-<UTC time>` (never deleted) and the new one takes its place;
- `-R` writes standby.signal and primary_conninfo (the new primary) into the data directory;
- `start: true` starts it (`pg_ctl start -w`, or the step's `start_argv`, e.g. systemctl).

The password of the DSN goes to the programs in PGPASSWORD, never on a command line, and -R writes it into
postgresql.auto.conf as primary_conninfo needs it. A timeout or cancel kills the running program's process
group; a partial base backup is removed, the old directory is left as it was.
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime
from typing import Any

from failover.engine.actions import ActionResult, StepContext
from failover.engine.actions.commands import CommandError, CommandResult, command_runner
from failover.engine.actions.postgres_conn import (
    DEFAULT_CONNECT_TIMEOUT,
    PgError,
    Stopped,
    pg_action,
    read_dsn,
    threshold,
    uncancellable,
)

START_TIMEOUT = 60  # pg_ctl start -w -t, when the step has no timeout
CLEANUP_SECONDS = 120.0  # removing a partial base backup after a cancel or timeout


def pg_program(params: dict[str, Any], name: str) -> str:
    """The path of a PostgreSQL program: in `pg_bin_dir` if the step gives one, else found on PATH."""
    directory = str(params.get("pg_bin_dir") or "").rstrip("/")
    return f"{directory}/{name}" if directory else name


class Rebuild:
    """One step's work on the node's data directory."""

    def __init__(self, params: dict[str, Any], ctx: StepContext) -> None:
        self.params = params
        self.ctx = ctx
        self.data_dir = str(params.get("data_dir") or "")
        if not self.data_dir.startswith("/") or ".." in self.data_dir.split("/") or self.data_dir.rstrip("/") == "":
            raise PgError(f"data_dir: {self.data_dir!r} is not an absolute path to a data directory")
        self.data_dir = os.path.normpath(self.data_dir)
        self.source = read_dsn(ctx, str(params.get("source_dsn_secret") or ""), "source_dsn_secret")
        try:
            self.runner = command_runner(params, ctx)
        except CommandError as exc:
            raise PgError(str(exc)) from None
        self.user = params.get("os_user") or None
        self.deadline = time.monotonic() + ctx.timeout if ctx.timeout else None
        connect_timeout = threshold(params, "connect_timeout") or DEFAULT_CONNECT_TIMEOUT
        # Only for the programs that connect to the new primary (not, say, the server pg_ctl starts).
        self.source_env = {"PGCONNECT_TIMEOUT": str(max(2, int(connect_timeout)))}
        if self.source.password:
            self.source_env["PGPASSWORD"] = self.source.password

    # ----------------------------------------------------------------- running programs
    def remaining(self) -> float | None:
        return None if self.deadline is None else max(0.0, self.deadline - time.monotonic())

    def run(
        self,
        argv: list[str],
        what: str,
        *,
        ctx: StepContext | None = None,
        check: bool = True,
        env: dict[str, str] | None = None,
    ) -> CommandResult:
        """Run one program; Stopped on timeout / cancel, PgError naming `what` and its last line on failure."""
        ctx = ctx or self.ctx
        remaining = self.remaining() if ctx is self.ctx else ctx.timeout
        if ctx.cancelled.is_set() or remaining == 0:
            raise self._stopped(ctx, what)
        try:
            result = self.runner.run(
                argv,
                ctx,
                timeout=remaining,
                env=env,
                user=self.user,
                on_line=lambda x: ctx.log(self.source.scrub(x)),
            )
        except CommandError as exc:
            raise PgError(f"{what}: {exc}") from None
        if result.stopped:
            raise self._stopped(ctx, what)
        if check and result.exit_code != 0:
            last = self.source.scrub(result.last_line())[:500]
            raise PgError(f"{what} failed {self.runner.where} (exit code {result.exit_code}): {last}")
        return result

    def _stopped(self, ctx: StepContext, what: str) -> Stopped:
        why = "cancelled" if ctx.cancelled.is_set() else f"timed out after {ctx.timeout:g}s"
        return Stopped(f"{why} during {what} (its process group was killed)")

    # ----------------------------------------------------------------- steps
    def stop_server(self) -> bool:
        """Stop the server on data_dir if it runs; True if it was running."""
        status = self.run(
            [pg_program(self.params, "pg_ctl"), "status", "-D", self.data_dir], "pg_ctl status", check=False
        )
        if status.exit_code != 0:  # 3: not running, 4: no data directory there
            return False
        self.ctx.log(f"stopping the server on {self.data_dir}")
        wait = str(int(min(self.remaining() or START_TIMEOUT, START_TIMEOUT)))
        self.run(
            [pg_program(self.params, "pg_ctl"), "stop", "-D", self.data_dir, "-m", "fast", "-w", "-t", wait],
            "pg_ctl stop",
        )
        return True

    def rewind(self) -> None:
        # A leftover signal file makes pg_rewind's single-user crash recovery refuse to run; -R writes it again.
        signals = [f"{self.data_dir}/standby.signal", f"{self.data_dir}/recovery.signal"]
        self.run(["rm", "-f", "--", *signals], "removing standby.signal")
        self.ctx.log(f"pg_rewind --target-pgdata {self.data_dir} from {self.source.where}")
        self.run(
            [
                pg_program(self.params, "pg_rewind"),
                "--target-pgdata",
                self.data_dir,
                "--source-server",
                self.source.without_password(),
                "--write-recovery-conf",
            ],
            f"pg_rewind of {self.data_dir} from {self.source.where}",
            env=self.source_env,
        )

    def basebackup(self) -> str | None:
        """A fresh copy of the new primary into data_dir; the old directory is kept aside (its path)."""
        fresh = f"{self.data_dir}.drplan-new"
        self.run(["rm", "-rf", "--", fresh], f"removing a leftover {fresh}")
        argv = [pg_program(self.params, "pg_basebackup"), "--pgdata", fresh, "--dbname", self.source.without_password()]
        argv += ["--wal-method", "stream", "--checkpoint", "fast", "--write-recovery-conf", "--no-password"]
        if self.params.get("max_rate"):
            argv += ["--max-rate", str(self.params["max_rate"])]
        self.ctx.log(f"pg_basebackup from {self.source.where} into {fresh}")
        try:
            self.run(argv, f"pg_basebackup from {self.source.where} into {fresh}", env=self.source_env)
        except PgError as exc:
            raise PgError(f"{exc.message}; {self._remove(fresh)}") from None
        aside = None
        if self.run(["test", "-e", self.data_dir], f"looking for {self.data_dir}", check=False).exit_code == 0:
            aside = f"{self.data_dir}.old-{datetime.now(UTC):%Y%m%dT%H%M%SZ}"
            self.run(["mv", "--", self.data_dir, aside], f"moving {self.data_dir} aside")
            self.ctx.log(f"the old data directory is kept as {aside}")
        self.run(["mv", "--", fresh, self.data_dir], f"moving the new copy to {self.data_dir}")
        return aside

    def _remove(self, path: str) -> str:
        """Remove a partial copy, even after a cancel (its own context and time)."""
        fresh, _ = uncancellable(self.ctx, CLEANUP_SECONDS)
        try:
            self.run(["rm", "-rf", "--", path], f"removing {path}", ctx=fresh)
        except PgError as exc:
            return f"the partial copy {path} could not be removed ({exc.message})"
        return f"the partial copy {path} was removed; {self.data_dir} is unchanged"

    def start(self) -> None:
        argv = self.params.get("start_argv")
        env = {}
        if not argv:
            wait = str(int(min(self.remaining() or START_TIMEOUT, START_TIMEOUT)))
            log_file = self.params.get("log_file") or f"{self.data_dir}/startup.log"
            argv = [pg_program(self.params, "pg_ctl"), "start", "-D", self.data_dir, "-w", "-t", wait, "-l", log_file]
            if self.params.get("port"):
                # Read by the server when postgresql.conf sets no port (several servers on one host).
                env = {"PGPORT": str(int(self.params["port"]))}
        self.ctx.log(f"starting the server on {self.data_dir} as a standby of {self.source.where}")
        self.run([str(a) for a in argv], f"starting the server on {self.data_dir}", env=env)


def _rebuild(params: dict[str, Any], ctx: StepContext, *, rewind: bool) -> ActionResult:
    started = time.monotonic()
    job = Rebuild(params, ctx)
    was_running = job.stop_server()
    output: dict[str, Any] = {"data_dir": job.data_dir, "source": job.source.where, "was_running": was_running}
    method = "pg_basebackup"
    if rewind:
        try:
            job.rewind()
            method = "pg_rewind"
        except Stopped as exc:
            raise Stopped(f"{exc.message}; {job.data_dir} may be unusable: rewind it again or rebuild it") from None
        except PgError as exc:
            if params.get("fallback", "basebackup") != "basebackup":
                raise
            output["rewind_error"] = exc.message
            ctx.log(f"{exc.message}; taking a fresh base backup instead")
    if method == "pg_basebackup":
        output["old_data_dir"] = job.basebackup()
    output["method"] = method
    if params.get("start"):
        job.start()
    output["started"] = bool(params.get("start"))
    output["seconds"] = round(time.monotonic() - started, 3)
    ctx.log(f"{output['data_dir']} is a standby of {output['source']} ({method}, {output['seconds']} s)")
    return ActionResult(True, output=output)


@pg_action("postgres.rewind")
def rewind(params: dict[str, Any], ctx: StepContext) -> ActionResult:
    return _rebuild(params, ctx, rewind=True)


@pg_action("postgres.rebuild_standby")
def rebuild_standby(params: dict[str, Any], ctx: StepContext) -> ActionResult:
    return _rebuild(params, ctx, rewind=False)
