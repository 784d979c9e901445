"""postgres.data_loss: what the new primary lacks after a failover (schema: runbooks/action_schemas/postgres.py).

The standby's position when promoted (asked of the new primary, or given) against the old primary's end
of WAL (given, e.g. the fence step's end_lsn, and/or read from its pg_wal with pg_waldump through the step's
command runner: this machine, or over SSH with `run_on`). The WAL also gives the transactions lost and their
time.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from failover.engine.actions import ActionResult, StepContext
from failover.engine.actions.commands import CommandError, command_runner
from failover.engine.actions.postgres_conn import Deadline, PgError, Session, Stopped, pg_action, session_for
from failover.engine.actions.postgres_rebuild import pg_program
from failover.engine.actions.postgres_wal import WalScan, format_lsn, newest_timeline, parse_lsn


@pg_action("postgres.data_loss")
def data_loss(params: dict[str, Any], ctx: StepContext) -> ActionResult:
    """Compare the old primary's end of WAL with what the new primary had when promoted."""
    deadline = Deadline(ctx, default=60.0)
    end = _lsn_param(params, "old_primary_end_lsn")
    wal_dir = params.get("wal_dir") or None
    if end is None and not wal_dir:
        raise PgError("nothing to compare: give old_primary_end_lsn and/or wal_dir (the old primary's pg_wal)")
    cut = _lsn_param(params, "standby_lsn")
    replayed_at = None
    if params.get("dsn_secret"):
        with session_for(params, ctx, deadline) as db:
            found, replayed_at = _promotion_point(db)
        cut = cut if cut is not None else found
    if cut is None:
        raise PgError("no standby position: give dsn_secret (the new primary) or standby_lsn")
    output: dict[str, Any] = {"standby_lsn": format_lsn(cut), "old_primary_end_lsn": format_lsn(end) if end else None}
    scan = _waldump(params, ctx, deadline, cut, end, output) if wal_dir else None
    if end is None and scan is not None:
        end = scan.end
        output["old_primary_end_lsn"] = format_lsn(end)
    lost_bytes = max(0, end - cut) if end is not None else None
    output["data_loss_bytes"] = lost_bytes
    measurements: dict[str, float] = {}
    if lost_bytes is not None:
        measurements["data_loss_bytes"] = float(lost_bytes)
    if scan is not None or lost_bytes == 0:
        commits = scan.commits if scan is not None else 0
        rpo = _rpo(scan, replayed_at, output) if commits else 0.0
        output.update({"data_loss_transactions": commits, "rpo_seconds": rpo})
        measurements.update({"data_loss_transactions": float(commits), "rpo_seconds": float(rpo or 0.0)})
        if rpo is None:
            measurements.pop("rpo_seconds")
    ctx.log(
        f"lost: {lost_bytes} bytes of WAL after {format_lsn(cut)}"
        + (
            f", {output.get('data_loss_transactions')} transaction(s), RPO {output.get('rpo_seconds')} s"
            if scan
            else ""
        )
    )
    return ActionResult(True, output=output, measurements=measurements)


def _lsn_param(params: dict[str, Any], name: str) -> int | None:
    try:
        return parse_lsn(params.get(name) or None)
    except ValueError as exc:
        raise PgError(f"{name}: {exc}") from None


def _promotion_point(db: Session) -> tuple[int, Any]:
    """What the node had from the old primary: if still a standby, all it received (a promotion now would
    replay it); once promoted, the end of the WAL it replayed (kept until it restarts). And the time of the
    last transaction it replayed."""
    in_recovery, receive, replay, replayed_at = db.row(
        "SELECT pg_is_in_recovery(), pg_last_wal_receive_lsn()::text, pg_last_wal_replay_lsn()::text,"
        " pg_last_xact_replay_timestamp()"
    )
    if in_recovery:
        positions = [p for p in (parse_lsn(receive), parse_lsn(replay)) if p is not None]
    else:
        positions = [p for p in (parse_lsn(replay),) if p is not None]
    if not positions:
        raise PgError(
            f"{db.dsn.where} does not know where it was promoted (restarted since?): give standby_lsn,"
            " e.g. {{ steps.promote.output.promoted_at_lsn }}"
        )
    return max(positions), replayed_at


def _waldump(
    params: dict[str, Any], ctx: StepContext, deadline: Deadline, cut: int, end: int | None, output: dict[str, Any]
) -> WalScan | None:
    """pg_waldump over the old primary's pg_wal from `cut` (to `end`), through the step's command runner.
    Unreadable WAL is reported in the output, not a failure: the LSN figures still stand."""
    try:
        runner = command_runner(params, ctx)
    except CommandError as exc:
        raise PgError(str(exc)) from None
    wal_dir = str(params["wal_dir"])
    user = params.get("os_user") or None
    timeline = params.get("timeline")
    try:
        if not timeline:
            names: list[str] = []
            listed = runner.run(
                ["ls", "-1", "--", wal_dir], ctx, timeout=deadline.remaining(), user=user, on_line=names.append
            )
            timeline = newest_timeline(names) if listed.ok else None
            if timeline is None:
                raise PgError(f"no WAL segment found in {wal_dir} ({listed.stopped or listed.last_line() or 'empty'})")
        argv = [
            pg_program(params, "pg_waldump"),
            "--path",
            wal_dir,
            "--start",
            format_lsn(cut),
            "--timeline",
            str(timeline),
        ]
        if end is not None:
            argv += ["--end", format_lsn(end)]
        scan = WalScan(cut)
        lines: list[str] = []

        def feed(line: str) -> None:
            scan.feed(line)
            if "error" in line:
                lines.append(line)

        result = runner.run(argv, ctx, timeout=deadline.remaining(), env={"TZ": "UTC"}, user=user, on_line=feed)
    except CommandError as exc:
        raise PgError(str(exc)) from None
    except PgError as exc:
        if isinstance(exc, Stopped):
            raise
        output["wal_error"] = exc.message
        ctx.log(f"WAL not read: {exc.message}")
        return None
    if result.stopped:
        raise deadline.stopped(ctx, f"reading {wal_dir} with pg_waldump")
    error = next((line for line in lines if "invalid record length" not in line), "")
    if error or (result.exit_code != 0 and not scan.records):
        output["wal_error"] = (error or result.last_line())[:500]
        ctx.log(f"pg_waldump could not read {wal_dir} {runner.where}: {output['wal_error']}")
        if not scan.records:
            return None
    output.update({"wal_dir": wal_dir, "timeline": int(timeline), "wal_records": scan.records})
    return scan


def _rpo(scan: WalScan | None, replayed_at: datetime | None, output: dict[str, Any]) -> float | None:
    """Seconds of commits lost: from the last transaction the new primary replayed (when known) to the last
    one lost; else the span of the lost commits."""
    if scan is None or scan.last_commit_at is None or scan.first_commit_at is None:
        return None
    output["lost_commits_from"] = datetime.fromtimestamp(scan.first_commit_at, tz=UTC).isoformat()
    output["lost_commits_until"] = datetime.fromtimestamp(scan.last_commit_at, tz=UTC).isoformat()
    if replayed_at is not None:
        output["rpo_basis"] = "last lost commit - last transaction the new primary replayed"
        return round(max(0.0, scan.last_commit_at - replayed_at.timestamp()), 3)
    output["rpo_basis"] = "span of the lost commits (the new primary's last transaction is not known)"
    return round(scan.last_commit_at - scan.first_commit_at, 3)
