"""Validation checks after an execution's steps: is the recovered service really there?

The checks are the ValidationChecks of the plan's RecoveryStrategy whose kind matches the
execution (failover for planned/unplanned/test, failback for failback). Per check type:

- connectivity: target "host:port" → a TCP connection; target "http(s)://…" → an HTTP GET
  answered below 400. With a threshold (unit ms, or s), the answer must also come within it.
- performance: an HTTP GET of the target, timed; passes if answered below 400 within the
  threshold (unit ms by default, or s). Measured in the check's unit.
- data_integrity: target = name of the secret holding the DSN (sqlite:///path, or
  postgres://…), ValidationCheck.query = ONE SQL statement, run so that it can only read and
  stops at the check's timeout (see _first_value); the first column of the first row is
  measured and must be at least the threshold (no threshold: a non-null value is enough).

A check that cannot be carried out (bad target, unknown secret, connection refused for an
HTTP check…) is ERROR, which counts as a failure for the rollback trigger.
"""

from __future__ import annotations

import socket
import sqlite3
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from django.db import transaction
from django.utils import timezone

from failover.choices import CheckStatus, ExecutionType
from failover.engine.events import emit
from failover.models import ExecutionEvent, FailoverExecution, ValidationResult
from plans.choices import CheckType, RollbackTrigger, Severity, StrategyKind
from plans.models import ValidationCheck

if TYPE_CHECKING:
    from failover.engine.runner import Coordinator

CHECK_TIMEOUT_SECONDS = 10.0
MAX_MEASURED = Decimal("99999999999.999")  # what ValidationResult.measured can hold


@dataclass
class CheckOutcome:
    status: str
    measured: float | None = None
    message: str = ""


def checks_for(execution: FailoverExecution) -> list[ValidationCheck]:
    """The validation checks that apply to an execution (none for runbook runs)."""
    if not execution.plan_id or execution.execution_type == ExecutionType.RUNBOOK:
        return []
    kind = StrategyKind.FAILBACK if execution.execution_type == ExecutionType.FAILBACK else StrategyKind.FAILOVER
    return list(
        ValidationCheck.objects.filter(strategy__plan_id=execution.plan_id, strategy__kind=kind)
        .select_related("strategy")
        .order_by("strategy__name", "id")
    )


def rollback_trigger_for(execution: FailoverExecution, checks: list[ValidationCheck]) -> str:
    """The execution's trigger (fixed at creation), else its strategy's, else critical_checks_fail."""
    if execution.rollback_trigger:
        return execution.rollback_trigger
    for check in checks:
        return check.strategy.rollback_trigger
    return RollbackTrigger.CRITICAL_CHECKS_FAIL


def should_roll_back(results: list[ValidationResult], trigger: str) -> bool:
    """any_check_fails: any failed or errored check; critical_checks_fail: any such check of severity critical."""
    bad = [r for r in results if r.status in (CheckStatus.FAILED, CheckStatus.ERROR)]
    if trigger == RollbackTrigger.ANY_CHECK_FAILS:
        return bool(bad)
    return any(r.severity == Severity.CRITICAL for r in bad)


def run_check(
    check: ValidationCheck, secret: Callable[[str], str], timeout: float = CHECK_TIMEOUT_SECONDS
) -> CheckOutcome:
    """Carry out one check; never raises."""
    try:
        if check.check_type == CheckType.CONNECTIVITY:
            return _connectivity(check, timeout)
        if check.check_type == CheckType.PERFORMANCE:
            return _performance(check, timeout)
        if check.check_type == CheckType.DATA_INTEGRITY:
            return _data_integrity(check, secret, timeout)
        return CheckOutcome(CheckStatus.ERROR, message=f"unknown check type '{check.check_type}'")
    except Exception as exc:
        return CheckOutcome(CheckStatus.ERROR, message=f"{type(exc).__name__}: {exc}")


def run_checks(coordinator: Coordinator) -> list[ValidationResult]:
    """Run the execution's checks concurrently (in the coordinator's pool), store the results and
    one VALIDATION event per check in one transaction; returns the stored results."""
    checks = checks_for(coordinator.execution)

    def run_all() -> list[CheckOutcome]:
        with ThreadPoolExecutor(max_workers=max(1, min(16, len(checks)))) as pool:
            return list(pool.map(lambda c: run_check(c, coordinator.secret_for_check), checks))

    outcomes = coordinator.run_blocking(run_all) if checks else []
    redact = coordinator.redactor.redact
    now = timezone.now()
    results = [
        ValidationResult(
            execution_id=coordinator.execution_id,
            name=check.name,
            check_type=check.check_type,
            severity=check.severity,
            status=outcome.status,
            measured=_decimal(outcome.measured),
            threshold=check.threshold,
            unit=check.unit or _default_unit(check),
            message=redact(outcome.message),
            checked_at=now,
        )
        for check, outcome in zip(checks, outcomes, strict=True)
    ]
    coordinator.keep_lease()
    with transaction.atomic():
        ValidationResult.objects.bulk_create(results)
        for result in results:
            emit(
                coordinator.execution_id,
                ExecutionEvent.Kind.VALIDATION,
                f"check '{result.name}' {result.status}" + (f": {result.message}" if result.message else ""),
                {
                    "check": result.name,
                    "check_type": result.check_type,
                    "severity": result.severity,
                    "status": result.status,
                    "measured": float(result.measured) if result.measured is not None else None,
                    "threshold": float(result.threshold) if result.threshold is not None else None,
                    "unit": result.unit,
                },
                redact=redact,
            )
    coordinator.validation_trigger = rollback_trigger_for(coordinator.execution, checks)
    return results


# ---------------------------------------------------------------------- check types
def _default_unit(check: ValidationCheck) -> str:
    return "" if check.check_type == CheckType.DATA_INTEGRITY else "ms"


def _in_unit(milliseconds: float, unit: str) -> float:
    return milliseconds / 1000 if unit.strip().lower() in ("s", "sec", "second", "seconds") else milliseconds


def _within(check: ValidationCheck, measured: float) -> bool:
    return check.threshold is None or Decimal(str(round(measured, 3))) <= check.threshold


def _connectivity(check: ValidationCheck, timeout: float) -> CheckOutcome:
    target = check.target.strip()
    if target.startswith(("http://", "https://")):
        return _timed_http(check, timeout)
    host, _, port = target.rpartition(":")
    if not host or not (port.isascii() and port.isdigit() and 0 < int(port) < 65536):
        return CheckOutcome(CheckStatus.ERROR, message=f"target {target!r} is neither host:port nor an http(s) URL")
    started = time.monotonic()
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
            pass
    except OSError as exc:
        return CheckOutcome(CheckStatus.FAILED, message=f"{target} not reachable: {exc}")
    measured = _in_unit((time.monotonic() - started) * 1000, check.unit or "ms")
    if not _within(check, measured):
        return CheckOutcome(CheckStatus.FAILED, measured, f"{target} answered after {measured:g} {check.unit or 'ms'}")
    return CheckOutcome(CheckStatus.PASSED, measured, f"{target} reachable")


def _performance(check: ValidationCheck, timeout: float) -> CheckOutcome:
    if not check.target.strip().startswith(("http://", "https://")):
        return CheckOutcome(CheckStatus.ERROR, message=f"target {check.target!r} is not an http(s) URL")
    return _timed_http(check, timeout)


def _timed_http(check: ValidationCheck, timeout: float) -> CheckOutcome:
    url = check.target.strip()
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    request = urllib.request.Request(url, method="GET", headers={"User-Agent": "drplan-validation"})  # noqa: S310
    started = time.monotonic()
    try:
        with opener.open(request, timeout=timeout) as response:
            response.read(1024 * 1024)
            status = response.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return CheckOutcome(CheckStatus.FAILED, message=f"{urlparse(url).netloc} did not answer: {reason}")
    unit = check.unit or "ms"
    measured = _in_unit((time.monotonic() - started) * 1000, unit)
    if status >= 400:
        return CheckOutcome(CheckStatus.FAILED, measured, f"HTTP {status}")
    if not _within(check, measured):
        return CheckOutcome(
            CheckStatus.FAILED, measured, f"HTTP {status} after {measured:g} {unit} (threshold {check.threshold})"
        )
    return CheckOutcome(CheckStatus.PASSED, measured, f"HTTP {status} in {measured:g} {unit}")


def _data_integrity(check: ValidationCheck, secret: Callable[[str], str], timeout: float) -> CheckOutcome:
    if not check.query.strip():
        return CheckOutcome(CheckStatus.ERROR, message="no query (ValidationCheck.query) to run")
    if not check.target.strip():
        return CheckOutcome(CheckStatus.ERROR, message="no target: the name of the secret holding the DSN")
    try:
        dsn = secret(check.target.strip())
    except Exception as exc:
        return CheckOutcome(CheckStatus.ERROR, message=str(getattr(exc, "message", exc)))
    try:
        value = _first_value(dsn, check.query, timeout)
    except QueryTimedOut as exc:
        return CheckOutcome(CheckStatus.ERROR, message=str(exc))
    if value is None:
        return CheckOutcome(CheckStatus.FAILED, message="the query returned no value")
    try:
        measured = float(value)
    except (TypeError, ValueError):
        return CheckOutcome(CheckStatus.ERROR, message=f"the query's first column is not a number: {value!r}")
    if check.threshold is not None and Decimal(str(value)) < check.threshold:
        return CheckOutcome(CheckStatus.FAILED, measured, f"{value} is below the threshold {check.threshold}")
    return CheckOutcome(CheckStatus.PASSED, measured, f"{value}")


class QueryTimedOut(Exception):
    pass


# What a read-only SQLite query may do (sqlite3 authorizer action codes); everything else is denied:
# writes, PRAGMA, ATTACH, VACUUM INTO (an ATTACH that writes a copy anywhere), transactions.
_SQLITE_READ_ACTIONS = {sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_FUNCTION, sqlite3.SQLITE_RECURSIVE}


def _first_value(dsn: str, query: str, timeout: float) -> Any:
    """First column of the first row of ONE statement that can only read, stopped after `timeout` seconds.

    The query is written by a person and must not be able to lift its own limits:
    - PostgreSQL: a READ ONLY transaction (BEGIN READ ONLY; a query cannot make it read-write once it has
      run), always rolled back; the extended protocol, which carries exactly one statement (no
      `SET …; INSERT …` or `COMMIT; …`); statement_timeout = the check's timeout, local to the transaction.
    - SQLite: the file opened read-only (mode=ro, the path percent-encoded so a DSN cannot smuggle URI
      parameters), PRAGMA query_only, an authorizer that allows reading only (no ATTACH, no VACUUM INTO, no
      PRAGMA), sqlite3's one statement per execute, and a progress handler that stops it at the timeout.
    """
    if dsn.startswith(("postgres://", "postgresql://")):
        return _postgres_first_value(dsn, query, timeout)
    return _sqlite_first_value(dsn.removeprefix("sqlite://"), query, timeout)  # sqlite:///var/x.db → /var/x.db


def _postgres_first_value(dsn: str, query: str, timeout: float) -> Any:
    import psycopg

    with psycopg.connect(dsn, connect_timeout=int(max(1, timeout))) as conn:
        conn.read_only = True  # psycopg starts the transaction with BEGIN READ ONLY
        try:
            conn.execute("SELECT set_config('statement_timeout', %s, true)", [f"{max(1, int(timeout * 1000))}ms"])
            # binary=True makes psycopg use the extended protocol even without parameters: one statement only.
            row = conn.execute(query, binary=True).fetchone()  # type: ignore[arg-type]
            return row[0] if row else None
        finally:
            conn.rollback()


def _sqlite_first_value(path: str, query: str, timeout: float) -> Any:
    if not Path(path).is_file():
        raise FileNotFoundError(f"sqlite database {path} does not exist")
    deadline = time.monotonic() + timeout
    conn = sqlite3.connect(f"{Path(path).resolve().as_uri()}?mode=ro", uri=True, timeout=timeout)
    try:
        conn.execute("PRAGMA query_only = ON")
        conn.setlimit(sqlite3.SQLITE_LIMIT_ATTACHED, 0)
        conn.set_authorizer(
            lambda action, *_: sqlite3.SQLITE_OK if action in _SQLITE_READ_ACTIONS else sqlite3.SQLITE_DENY
        )
        conn.set_progress_handler(lambda: int(time.monotonic() > deadline), 1000)
        try:
            row = conn.execute(query).fetchone()
        except sqlite3.OperationalError as exc:
            if str(exc) == "interrupted":
                raise QueryTimedOut(f"the query ran longer than the check's timeout ({timeout:g}s)") from None
            raise
        return row[0] if row else None
    finally:
        conn.close()


def _decimal(value: float | None) -> Decimal | None:
    if value is None:
        return None
    try:
        number = Decimal(str(round(value, 3)))
    except (InvalidOperation, ValueError):
        return None
    return number if abs(number) <= MAX_MEASURED else None
