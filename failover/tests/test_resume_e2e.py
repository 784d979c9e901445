"""Resume, end to end with the real coordinator: an operator fixes what failed and resumes;
the failed step runs again, what had succeeded does not."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.contrib.auth.models import User

from failover import services
from failover.engine.runner import run_execution
from failover.tests.engine_support import make_execution, shell, steps_of

pytestmark = pytest.mark.django_db(transaction=True)


def test_resume_reruns_the_failed_step_and_never_what_succeeded(tmp_path: Path, enqueued):
    ran = tmp_path / "ran"
    fixed = tmp_path / "fixed"
    execution = make_execution(
        [
            shell("sh", "-c", f"echo prepare >> {ran}", key="prepare"),
            shell("sh", "-c", f"echo promote >> {ran}; test -e {fixed}", key="promote", needs=["prepare"]),
            shell("sh", "-c", f"echo verify >> {ran}", key="verify", needs=["promote"]),
        ],
        on_failure="stop",
    )
    assert run_execution(execution.pk) == "failed"
    assert ran.read_text().split() == ["prepare", "promote"]

    fixed.touch()  # the operator repairs the cause
    operator = User.objects.create_superuser("oncall", password="x-not-used")
    services.resume(execution, operator, comment="standby disk replaced")
    assert run_execution(execution.pk) == "completed"

    assert ran.read_text().split() == ["prepare", "promote", "promote", "verify"]
    steps = steps_of(execution)
    # attempts count every run of a step, across the resume
    assert (steps["prepare"].attempts, steps["promote"].attempts, steps["verify"].attempts) == (1, 2, 1)
    assert {s.status for s in steps.values()} == {"succeeded"}
