"""Every template of the library runs end to end for real, or (demo-only ones) dry-runs.

For each slug with a target (runbooks/tests/template_targets.py TARGETS, and TARGETS_MORE of
template_targets_more.py when it exists): the target starts the real servers and sets up the disaster; the
template is made a DRAFT through "use template" (its secrets bound to secrets created in DRPlan's store),
submitted and approved by someone else, run through the engine for real (a failover/failback runbook through
a plan that holds its application, as the engine demands), and must complete with a measured RTO, the
servers in the state the target's verify() checks, and the run shown as the template's last verified run.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings

from core.secrets import set_secret
from failover import services as failover_services
from failover.engine.runner import run_execution
from failover.models import ExecutionEvent, FailoverExecution, StepRun
from plans.tests.factories import make_app, make_plan
from runbooks import library, services
from runbooks.choices import RunbookCategory, VersionStatus
from runbooks.models import RunbookVersion
from runbooks.tests.template_targets import TARGETS, TargetFactory

try:  # the other template helper's targets (HAProxy, MariaDB, AWS on moto), when present
    from runbooks.tests.template_targets_more import TARGETS_MORE
except ImportError:  # pragma: no cover - depends on what is installed
    TARGETS_MORE: dict[str, TargetFactory] = {}

ALL_TARGETS: dict[str, TargetFactory] = {**TARGETS, **TARGETS_MORE}
DRY_RUN_ONLY = sorted(t.slug for t in library.all_templates() if t.dry_run_only)

pytestmark = pytest.mark.django_db(transaction=True)


def make_draft(
    slug: str, secrets: dict[str, str], author: Any, application: str | None = None, runbook_slug: str = ""
) -> RunbookVersion:
    """The template as a draft through "use template", bound to secrets of the same names created here."""
    for name, value in secrets.items():
        set_secret(name, value)
    template = library.get_template(slug)
    return library.use_template(
        slug,
        runbook_slug=runbook_slug or f"{slug}-run",
        application=application,
        secrets={name: name for name in template.secrets},
        actor=author,
    )


def approve(version: RunbookVersion, author: Any, users: dict[str, Any]) -> RunbookVersion:
    """Submitted by its author, approved level by level by a user holding each level's role."""
    services.submit_for_approval(version, author)
    levels = list(version.approval_levels.filter(required=True).order_by("level"))
    for level in levels:
        for _ in range(level.min_approvers):
            services.decide(version, users.get(level.role, users["admin"]), "approve", "template run")
    if not levels:  # one approval by someone else
        services.decide(version, users["approver"], "approve", "template run")
    version.refresh_from_db()
    assert version.status == VersionStatus.APPROVED
    return version


def _why(execution: FailoverExecution) -> str:
    lines = [f"execution: {execution.status} {execution.error}"]
    for step in StepRun.objects.filter(execution=execution).order_by("id"):
        lines.append(f"  {step.step_key}: {step.status} {step.error}")
    lines += [e.message for e in ExecutionEvent.objects.filter(execution=execution, kind="log").order_by("seq")][-40:]
    return "\n".join(lines)


def run_version(
    version: RunbookVersion, params: dict[str, Any], operator: Any, *, dry_run: bool = False
) -> FailoverExecution:
    """Run an approved version through the engine (or dry-run any): failover/failback runbooks through a plan of
    their application."""
    if version.category in (RunbookCategory.FAILOVER, RunbookCategory.FAILBACK):
        plan = make_plan(f"plan-{version.runbook.slug}", status="active", applications=[version.application])
        start = (
            failover_services.start_failover
            if version.category == RunbookCategory.FAILOVER
            else failover_services.start_failback
        )
        execution = start(plan, actor=operator, parameters=params, reason="template run", dry_run=dry_run)
    else:
        execution = failover_services.execute_runbook(
            version, actor=operator, parameters=params, reason="template run", dry_run=dry_run
        )
    run_execution(execution.pk)
    execution.refresh_from_db()
    return execution


def run_template(slug: str, root: Path, users: dict[str, Any], make_user: Any) -> tuple[FailoverExecution, Any]:
    """Start the target, make, approve and run the template; returns (execution, target) after verify()."""
    author = make_user(f"author-{slug}"[:150], "approver")
    with ALL_TARGETS[slug](root) as target:
        application = make_app(f"app-{slug}"[:100], tier=1)
        version = make_draft(slug, target.secrets, author, application=application.slug)
        assert version.status == VersionStatus.DRAFT
        approve(version, author, users)
        execution = run_version(version, target.params, users["operator"])
        assert execution.status == "completed", _why(execution)
        target.verify()
    return execution, target


def test_every_target_names_a_template_of_the_library() -> None:
    slugs = {t.slug for t in library.all_templates()}
    assert set(ALL_TARGETS) <= slugs
    for slug in ALL_TARGETS:
        assert library.get_template(slug).tested_by.endswith(f"[{slug}]")
        assert not library.get_template(slug).dry_run_only


@pytest.fixture
def server_dir() -> Iterator[Path]:
    """A directory the servers' unprivileged user can reach (pytest's tmp dirs are root's only)."""
    root = Path(settings.VAR_DIR) / f"template-run-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    root.mkdir(parents=True)
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.mark.realsystem
@pytest.mark.parametrize("slug", sorted(ALL_TARGETS))
def test_template_runs_against_real_servers(
    slug: str, server_dir: Path, users: dict[str, Any], make_user: Any, enqueued: list[int]
) -> None:
    execution, _ = run_template(slug, server_dir, users, make_user)
    assert execution.dry_run is False
    assert execution.actual_rto_seconds is not None and execution.actual_rto_seconds > 0
    assert set(StepRun.objects.filter(execution=execution).values_list("status", flat=True)) <= {"succeeded", "failed"}
    if slug == "postgres-backup-restore":  # RPO = the backup's age, reported by the run
        assert execution.actual_rpo_seconds is not None and execution.actual_rpo_seconds > 0
    last = library.last_verified_run(slug)
    assert last is not None and last["rto_seconds"] == execution.actual_rto_seconds


@pytest.mark.parametrize("slug", DRY_RUN_ONLY)
def test_demo_template_dry_runs(slug: str, users: dict[str, Any], make_user: Any, enqueued: list[int]) -> None:
    """Templates for the demo organisation's example hosts: rendered and checked step by step, nothing run."""
    template = library.get_template(slug)
    application = make_app(f"app-{slug}"[:100], tier=1)
    secrets = {name: f"value-of-{name}" for name in template.secrets}
    version = make_draft(slug, secrets, users["approver"], application=application.slug)
    defaults = {p["name"]: p["default"] for p in template.parameters() if p["default"] is not None}
    execution = run_version(version, defaults, users["operator"], dry_run=True)
    assert execution.status == "completed", _why(execution)
    assert set(StepRun.objects.filter(execution=execution).values_list("status", flat=True)) == {"skipped"}
    assert library.last_verified_run(slug) is None  # a dry run is no verified run
