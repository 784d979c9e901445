"""The dry run: every step rendered (secrets masked) and checked, nothing executed. The coordinator
then ends the execution COMPLETED, or FAILED listing the problems."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.db import transaction

from core.exceptions import InvalidInput
from failover.choices import StepStatus as SS
from failover.engine import rollback
from failover.engine.actions import get_executor
from failover.engine.states import transition_step

if TYPE_CHECKING:
    from failover.engine.runner import Coordinator


def check_and_skip(c: Coordinator) -> list[str]:
    """Render every PENDING step (and its rollback), check each action has an executor, and mark the
    step SKIPPED with its masked parameters; run nothing. Returns the problems found."""
    order = rollback.topological_order(list(c.steps.values())) or []
    problems: list[str] = []
    with transaction.atomic():
        for step in order:
            if step.status != SS.PENDING:
                continue
            note, problem = "dry run", ""
            masked: dict[str, Any] | None = None
            try:
                _, masked = c.render(step, step.params, dry_run=True)
                if step.rollback:
                    c.render(step, (step.rollback or {}).get("with") or {}, dry_run=True)
            except InvalidInput as exc:
                problem = f"parameters: {exc.message}"
            if step.action != "manual" and get_executor(step.action) is None:
                problem = problem or f"no executor for action '{step.action}'"
            rollback_action = (step.rollback or {}).get("action", "")
            if step.rollback and rollback_action != "manual" and get_executor(rollback_action) is None:
                problem = problem or f"no executor for rollback action '{step.rollback.get('action')}'"
            if problem:
                problems.append(f"{step.step_key}: {problem}")
                note = f"dry run: {problem}"
            elif step.action == "manual":
                note = "dry run: would wait for confirmation"
            elif step.approval:
                note = "dry run: would wait for approval"
            transition_step(
                step,
                SS.SKIPPED,
                only_from={SS.PENDING},
                message=f"{step.step_key} {note}",
                redact=c.redactor.redact,
                rendered=masked,
                error=problem,
            )
    return problems
