"""The demo organisation's plans dry-run cleanly: every composed step renders, every action
and rollback action is known, every referenced secret exists."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command

from core.exceptions import Conflict
from failover import services
from failover.engine.runner import run_execution
from failover.models import StepRun
from plans.models import DRPlan

pytestmark = pytest.mark.django_db(transaction=True)


def _dry_run_completes(execution) -> None:
    assert run_execution(execution.pk) == "completed", execution.error
    steps = StepRun.objects.filter(execution=execution)
    assert steps.exists()
    assert set(steps.values_list("status", flat=True)) == {"skipped"}
    assert all(step.rendered is not None for step in steps)


def test_demo_plans_dry_run_their_failovers_and_tests_to_completion():
    call_command("seed_demo", verbosity=0)
    operator = User.objects.get(username="operator")
    for plan_id in ("core-commerce", "payments-pci", "lab"):
        plan = DRPlan.objects.get(plan_id=plan_id)
        _dry_run_completes(services.start_failover(plan, execution_type="planned", actor=operator, dry_run=True))
    back_office = DRPlan.objects.get(plan_id="back-office")
    _dry_run_completes(services.start_test(back_office, actor=operator, dry_run=True))
    # Its only failover runbook is the demo's approved file-storage walkthrough (file storage is shared with
    # core-commerce); reporting is restored from backups (a restore runbook, not composed into a failover).
    failover = services.start_failover(back_office, execution_type="planned", actor=operator, dry_run=True)
    _dry_run_completes(failover)
    keys = set(StepRun.objects.filter(execution=failover).values_list("step_key", flat=True))
    assert keys == {"file-storage.check-replication", "file-storage.switch-endpoint", "file-storage.verify"}
    # A real failover of core-commerce needs the template runbooks of its applications approved too: they
    # act on real infrastructure, so the demo leaves them drafts for you to adapt.
    with pytest.raises(Conflict, match="has no approved version"):
        services.start_failover(DRPlan.objects.get(plan_id="core-commerce"), execution_type="planned", actor=operator)
