"""Connect a running lab to DRPlan's database: its secrets, its copies of the runbooks, their approval.

Secrets. `lab up` stores what the runbooks need to reach the lab's servers, as a DR manager would for
their own: `pg_primary` and `pg_standby` (DSNs of pg1 and pg2: the pair the generic PostgreSQL runbooks
fail over and back), `redis_primary` and `redis_replica` (URLs of redis1 and redis2), `orders_app_token`
(the orders app's admin API token), `lab_clone` (the DR test's clone), `lab-postgres-dsn` (every lab
PostgreSQL with `target_session_attrs=primary`: whichever is primary, for the plan's validation check)
and, with `lab up --ssh`, `pg_hosts_known_hosts` and `pg_hosts_ssh_key` (the lab sshd's host key and
the client key of its user).

Runbooks. The generic runbooks of runbooks/templates/ (postgres-failover, postgres-failback,
redis-failover) and the lab-only lab/templates/lab-dr-test.yaml are imported as the lab's versions:
the same steps with the parameters' defaults set to the lab's servers (data directories, ports, the
app's URL, the SSH port), and, when the nodes are on this machine (no --ssh), without `run_on` (the
programs run on the worker's machine). The version is `<template version>-lab.<UTC time>.<hash>`: a
new lab gets a newer version, the same lab the same one. The lab approves the versions it imported
as the demo approver (user `approver`) through runbooks.services — the normal two-person path: the
author is the system, never the approver, so this is no self-approval, and every step is audited.
"""

from __future__ import annotations

import copy
import hashlib
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lab.cluster import CLONE_DIR, REPO, app_url
from lab.state import DBNAME, DBUSER, HOST

LAB_PLAN_ID = "lab"
GENERIC_TEMPLATES = REPO / "runbooks" / "templates"
LAB_TEMPLATES = Path(__file__).resolve().parent / "templates"
LAB_RUNBOOKS = {
    "postgres-failover": GENERIC_TEMPLATES / "postgres-failover.yaml",
    "postgres-failback": GENERIC_TEMPLATES / "postgres-failback.yaml",
    "redis-failover": GENERIC_TEMPLATES / "redis-failover.yaml",
    "lab-dr-test": LAB_TEMPLATES / "lab-dr-test.yaml",
}
DSN_SECRET = "lab-postgres-dsn"  # noqa: S105 (a secret's name, not its value)
DEMO_APPROVER = "approver"


def postgres_dsn(port: int) -> str:
    return f"postgresql://{DBUSER}@{HOST}:{port}/{DBNAME}?connect_timeout=3"


def lab_dsn(state: dict[str, Any]) -> str:
    hosts = ",".join(f"{HOST}:{node['port']}" for _, node in sorted(state["postgres"].items()))
    return f"postgresql://{DBUSER}@{hosts}/{DBNAME}?target_session_attrs=primary&connect_timeout=3"


def secret_values(state: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """name -> (value, description) of every secret the lab's runbooks use."""
    root = Path(state["root"])
    pg1, pg2 = state["postgres"]["pg1"], state["postgres"]["pg2"]
    r1, r2 = state["redis"]["redis1"], state["redis"]["redis2"]
    values = {
        "pg_primary": (postgres_dsn(pg1["port"]), "DSN of the original PostgreSQL primary (DR lab: pg1)"),
        "pg_standby": (postgres_dsn(pg2["port"]), "DSN of the PostgreSQL standby failed over to (DR lab: pg2)"),
        "redis_primary": (f"redis://{HOST}:{r1['port']}/0", "URL of the Redis primary (DR lab: redis1)"),
        "redis_replica": (f"redis://{HOST}:{r2['port']}/0", "URL of the Redis replica (DR lab: redis2)"),
        "orders_app_token": ((root / "app-token").read_text().strip(), "DR lab: the orders app's admin API token"),
        "lab_clone": (postgres_dsn(state["clone_port"]), "DR lab: DSN of the DR test's clone"),
        DSN_SECRET: (lab_dsn(state), "DR lab: DSN of whichever lab PostgreSQL is primary"),
    }
    if state.get("ssh"):
        key = (root / "sshd" / "client_key").read_text()
        values["pg_hosts_known_hosts"] = (state["ssh"]["known_hosts"], "Host keys of the database hosts")
        values["pg_hosts_ssh_key"] = (key, "Private key DRPlan logs in to the database hosts with")
    return values


def lab_parameters(state: dict[str, Any]) -> dict[str, Any]:
    """The runbook parameters that point the runbooks at this lab (a runbook takes those it declares)."""
    root = Path(state["root"])
    pg1, pg2 = state["postgres"]["pg1"], state["postgres"]["pg2"]
    from core.localservers import procs

    ssh = state.get("ssh") or {}
    return {
        "primary_data_dir": pg1["data"],
        "standby_data_dir": pg2["data"],
        "primary_wal_dir": f"{pg1['data']}/pg_wal",
        "primary_port": pg1["port"],
        "standby_port": pg2["port"],
        "pg_bin_dir": str(Path(procs.pg_bin("pg_ctl")).parent),
        "os_user": "" if ssh else (state.get("user") or ""),
        "primary_ssh_host": HOST,
        "standby_ssh_host": HOST,
        "ssh_host": HOST,
        "primary_ssh_port": ssh.get("port", 22),
        "standby_ssh_port": ssh.get("port", 22),
        "ssh_port": ssh.get("port", 22),
        "ssh_username": ssh.get("username", "drplan-ssh"),
        "replica_host": HOST,
        "replica_port": state["redis"]["redis2"]["port"],
        "app_admin_url": app_url(state),
        "clone_data_dir": str(root / CLONE_DIR),
        "clone_port": state["clone_port"],
        "python": sys.executable,
        "manage_py": str(REPO / "manage.py"),
        "lab_dir": str(root),
    }


def lab_document(template: Path, state: dict[str, Any]) -> dict[str, Any]:
    """The template with the lab's parameter defaults (and no run_on when the nodes are on this machine),
    versioned `<version>-lab.<UTC time>.<hash of the content>`."""
    import yaml

    from runbooks.library import document_of

    doc = document_of(template) if template.parent == GENERIC_TEMPLATES else yaml.safe_load(template.read_text())
    values = lab_parameters(state)
    for name, spec in (doc.get("parameters") or {}).items():
        if name in values:
            spec["default"] = values[name]
    if not state.get("ssh"):
        for step in doc["steps"]:
            step.get("with", {}).pop("run_on", None)
    digest = hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:10]
    doc = copy.deepcopy(doc)
    doc["version"] = f"{doc['version']}-lab.{datetime.now(UTC):%Y%m%d%H%M%S}.{digest}"
    doc["description"] = (
        f"{doc.get('description', '').strip()} (The DR lab's copy of {template.relative_to(REPO)}: parameters"
        " set to the lab's servers by `manage.py lab up`.)"
    )
    return doc


def import_lab_runbooks(state: dict[str, Any]) -> list[Any]:
    """Import (or find, when this lab imported it already) the lab's version of each runbook."""
    from core.choices import AuthMethod
    from runbooks.models import RunbookVersion
    from runbooks.services import import_runbook_document

    versions = []
    for slug, template in LAB_RUNBOOKS.items():
        doc = lab_document(template, state)
        digest = doc["version"].rsplit(".", 1)[1]
        found = RunbookVersion.objects.filter(runbook__slug=slug, version__endswith=f".{digest}").first()
        versions.append(found or import_runbook_document(doc, actor=None, auth_method=AuthMethod.CLI))
    return versions


def approve(versions: list[Any], approver_username: str = DEMO_APPROVER) -> list[str]:
    """Submit and approve (as `approver_username`) each version that is not approved yet. One line each."""
    from django.contrib.auth.models import User

    from core.choices import AuthMethod
    from runbooks import services
    from runbooks.choices import Decision, VersionStatus

    approver = User.objects.filter(username=approver_username).first()
    if approver is None:
        return [f"no user {approver_username!r}: run `python manage.py seed_demo` first"]
    done = []
    for version in versions:
        slug = version.runbook.slug
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


def store_secrets(state: dict[str, Any]) -> list[str]:
    from core.choices import AuthMethod
    from core.secrets import get_secret_value, set_secret

    changed = []
    for name, (value, description) in secret_values(state).items():
        try:
            current = get_secret_value(name)
        except Exception:  # not defined yet
            current = None
        if current != value:
            set_secret(name, value, auth_method=AuthMethod.CLI, description=description)
            changed.append(name)
    return changed


def connect_database(state: dict[str, Any], *, approve_runbooks: bool = True) -> list[str]:
    """Store the lab's secrets, import its runbooks and approve them, if the Lab plan is loaded."""
    from plans.models import DRPlan

    if not DRPlan.objects.filter(plan_id=LAB_PLAN_ID).exists():
        return ["no Lab plan in the database: run `python manage.py seed_demo` to load it, then `lab up` again"]
    names = sorted(secret_values(state))
    changed = store_secrets(state)
    lines = [f"secrets {', '.join(names)} point at the lab ({len(changed)} changed)"]
    versions = import_lab_runbooks(state)
    if approve_runbooks:
        lines += approve(versions)
    else:
        lines += [f"{v.runbook.slug} {v.version}: {v.status}" for v in versions]
    from lab import hooks

    lines += hooks.after_up(state)  # the lab's monitors (RPO, availability), through the seam
    return lines
