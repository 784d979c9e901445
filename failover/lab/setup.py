"""Connect a running lab to DRPlan's database: the Lab plan's DSN secret and approved runbooks.

`seed_demo` loads the Lab plan and imports the lab runbook templates like every template: as
drafts authored by the system. A plan only runs approved versions, so `lab up` (this module)
submits the lab runbooks' latest versions and has the demo approver (user `approver`, role
approver) approve them through runbooks.services — the normal two-person path: the author is
the system, never the approver, so this is no self-approval, and every step is audited.
It also stores the lab's DSN (every lab PostgreSQL, `target_session_attrs=primary`: libpq
finds whichever is primary) in the secret the Lab plan's validation check reads.
"""

from __future__ import annotations

from typing import Any

from failover.lab.state import DBNAME, DBUSER, HOST

LAB_PLAN_ID = "lab"
LAB_RUNBOOKS = ("postgres-failover", "postgres-failback", "redis-failover", "lab-dr-test")
DSN_SECRET = "lab-postgres-dsn"  # noqa: S105 (a secret's name, not its value)
DEMO_APPROVER = "approver"


def lab_dsn(state: dict[str, Any]) -> str:
    hosts = ",".join(f"{HOST}:{node['port']}" for _, node in sorted(state["postgres"].items()))
    return f"postgresql://{DBUSER}@{hosts}/{DBNAME}?target_session_attrs=primary&connect_timeout=3"


def approve_lab_runbooks(approver_username: str = DEMO_APPROVER) -> list[str]:
    """Submit and approve (as `approver_username`) the latest version of each lab runbook that is
    not approved yet. Returns what it did, one line per runbook."""
    from django.contrib.auth.models import User

    from core.choices import AuthMethod
    from runbooks import services
    from runbooks.choices import Decision, VersionStatus
    from runbooks.models import Runbook
    from runbooks.selectors import latest

    approver = User.objects.filter(username=approver_username).first()
    if approver is None:
        return [f"no user {approver_username!r}: run `python manage.py seed_demo` first"]
    done = []
    for slug in LAB_RUNBOOKS:
        runbook = Runbook.objects.filter(slug=slug).first()
        version = latest(runbook.versions.all()) if runbook else None
        if version is None:
            done.append(f"{slug}: not imported (run seed_demo)")
            continue
        if version.status == VersionStatus.APPROVED:
            done.append(f"{slug} {version.version}: already approved")
            continue
        if version.created_by_id == approver.pk:
            done.append(f"{slug} {version.version}: authored by {approver_username}; approve it as someone else")
            continue
        if version.status == VersionStatus.DRAFT:
            version = services.submit_for_approval(version, None, auth_method=AuthMethod.CLI)
        if version.status != VersionStatus.PENDING_APPROVAL:
            done.append(f"{slug} {version.version}: {version.status}, left alone")
            continue
        version = services.decide(
            version,
            approver,
            Decision.APPROVE,
            "DR lab runbook approved by the demo approver (manage.py lab up)",
            auth_method=AuthMethod.CLI,
        )
        done.append(f"{slug} {version.version}: {version.status} by {approver_username}")
    return done


def connect_database(state: dict[str, Any], *, approve: bool = True) -> list[str]:
    """Store the lab DSN secret and approve the lab runbooks, if the Lab plan is loaded."""
    from core.choices import AuthMethod
    from core.secrets import set_secret
    from plans.models import DRPlan

    if not DRPlan.objects.filter(plan_id=LAB_PLAN_ID).exists():
        return ["no Lab plan in the database: run `python manage.py seed_demo` to load it, then `lab up` again"]
    from core.secrets import get_secret_value

    dsn = lab_dsn(state)
    try:
        current = get_secret_value(DSN_SECRET)
    except Exception:  # not defined yet
        current = None
    if current != dsn:
        set_secret(DSN_SECRET, dsn, auth_method=AuthMethod.CLI, description=None)
    lines = [f"secret {DSN_SECRET} points at the lab PostgreSQL pair"]
    if approve:
        lines += approve_lab_runbooks()
    return lines
