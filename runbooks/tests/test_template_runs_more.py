"""Each template of runbooks/tests/template_targets_more.py runs for real: its document (the `template:` record
popped) is imported and approved, its secrets are created, and a real coordinator runs it in process against the
servers its target starts (HAProxy and two HTTP sites with a client counting every request, a MariaDB primary
and replica, moto's AWS emulator). It must complete, leave those servers as its target's verify() expects, and
have its RTO measured by the engine."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from django.utils import timezone

from core.secrets import set_secret
from failover.engine.graph import build_runbook_steps, create_step_runs
from failover.engine.runner import run_execution
from failover.models import FailoverExecution, StepRun
from failover.parameters import validate_parameters
from runbooks.choices import VersionStatus
from runbooks.models import RunbookVersion
from runbooks.services import import_runbook_document
from runbooks.tests.template_targets_more import TARGETS_MORE

pytestmark = pytest.mark.django_db(transaction=True)

TEMPLATES = Path(__file__).resolve().parents[1] / "templates"
STRATEGIES = {"backup_restore", "pilot_light", "active_passive", "active_active", "replication"}


def load(slug: str) -> tuple[dict, dict]:
    """The template's runbook document and its `template:` record."""
    document = yaml.safe_load((TEMPLATES / f"{slug}.yaml").read_text())
    return document, document.pop("template")


@pytest.mark.parametrize("slug", sorted(TARGETS_MORE))
def test_the_template_records_what_it_needs(slug: str) -> None:
    document, meta = load(slug)
    assert document["slug"] == slug
    assert meta["strategy"] in STRATEGIES
    assert meta["systems"] and meta["run_against"]
    node = f"runbooks/tests/test_template_runs_more.py::test_template_runs_against_real_servers[{slug}]"
    assert meta["tested_by"] == node
    # every secret the document names is described, and nothing more
    text = yaml.safe_dump(document)
    assert {name for name in meta["secrets"] if name in text} == set(meta["secrets"])


@pytest.mark.realsystem
@pytest.mark.parametrize("slug", sorted(TARGETS_MORE))
def test_template_runs_against_real_servers(slug: str, tmp_path: Path) -> None:
    document, meta = load(slug)
    version = import_runbook_document(document)
    RunbookVersion.objects.filter(pk=version.pk).update(status=VersionStatus.APPROVED, approved_at=timezone.now())
    version.refresh_from_db()
    with TARGETS_MORE[slug](tmp_path) as target:
        assert set(target.secrets) == set(meta["secrets"])
        for name, value in target.secrets.items():
            set_secret(name, value)
        execution = FailoverExecution.objects.create(
            runbook_version=version,
            execution_type="runbook",
            status="pending",
            triggered_at=timezone.now(),
            parameters=validate_parameters([version], target.params),
        )
        create_step_runs(execution, build_runbook_steps(version))
        status = run_execution(execution.pk)
        execution.refresh_from_db()
        failed = list(
            StepRun.objects.filter(execution=execution).exclude(status="succeeded").values_list("step_key", "error")
        )
        assert status == "completed", (execution.error, failed)
        assert failed == []
        target.verify()
    assert execution.actual_rto_seconds is not None and execution.actual_rto_seconds > 0
    print(f"\n{slug}: measured RTO {execution.actual_rto_seconds:.2f}s")


@pytest.mark.parametrize("slug", sorted(TARGETS_MORE))
def test_the_template_dry_runs_as_seed_demo_imports_it(slug: str) -> None:
    """What the demo holds: the document imported as a draft and dry-run with its defaults."""
    document, _meta = load(slug)
    version = import_runbook_document(document)
    assert version.status == VersionStatus.DRAFT
    execution = FailoverExecution.objects.create(
        runbook_version=version,
        execution_type="runbook",
        status="pending",
        dry_run=True,
        triggered_at=timezone.now(),
        parameters=validate_parameters([version], {}),
    )
    create_step_runs(execution, build_runbook_steps(version))
    assert run_execution(execution.pk) == "completed", FailoverExecution.objects.get(pk=execution.pk).error
    steps = StepRun.objects.filter(execution=execution)
    assert set(steps.values_list("status", flat=True)) == {"skipped"}
    assert steps.count() == len(document["steps"])
