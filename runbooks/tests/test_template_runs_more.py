"""The templates of runbooks/tests/template_targets_more.py (HAProxy, MariaDB, AWS) as the demo holds them: imported
as drafts and dry-run with their defaults. Their real runs are test_template_runs.py's, with every other template's."""

from __future__ import annotations

import copy

import pytest
from django.utils import timezone

from failover.engine.graph import build_runbook_steps, create_step_runs
from failover.engine.runner import run_execution
from failover.models import FailoverExecution, StepRun
from failover.parameters import validate_parameters
from runbooks import library
from runbooks.choices import VersionStatus
from runbooks.services import import_runbook_document
from runbooks.tests.template_targets_more import TARGETS_MORE

pytestmark = pytest.mark.django_db(transaction=True)


def load(slug: str) -> dict:
    """The template's runbook document, without its `template:` record."""
    return copy.deepcopy(library.get_template(slug).document)


@pytest.mark.parametrize("slug", sorted(TARGETS_MORE))
def test_the_template_dry_runs_as_seed_demo_imports_it(slug: str) -> None:
    """What the demo holds: the document imported as a draft and dry-run with its defaults."""
    document = load(slug)
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
