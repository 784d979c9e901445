"""The go/no-go rule every execution obeys: it runs only once its approval policy is satisfied.

An execution's policy (the plan's approval levels, snapshotted into `approval_policy` when it was
triggered) is satisfied when every level has `approvers` distinct approving decisions. The rule is
enforced in one place, `failover.engine.states.transition_execution`: no move to RUNNING while a
level is outstanding, whatever the caller (coordinator start, resume, retry, cancel with rollback).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from core.exceptions import Conflict
from failover.models import ApprovalDecision
from runbooks.choices import Decision


class ApprovalRequired(Conflict):
    """An execution cannot run: a level of its go/no-go policy has not been approved."""

    default_code = "approval_required"


def current_level(policy: list[dict[str, Any]], decisions: Iterable[Any]) -> dict[str, Any] | None:
    """The first level (in order) without its number of distinct approvals, or None when all are met.

    `decisions` are execution-level ApprovalDecisions (anything with level, user_id, decision)."""
    decided = list(decisions)
    for level in sorted(policy or [], key=lambda lv: lv["level"]):
        approvals = {d.user_id for d in decided if d.level == level["level"] and d.decision == Decision.APPROVE}
        if len(approvals) < int(level.get("approvers", 1)):
            return level
    return None


def outstanding_level(execution_id: int, policy: list[dict[str, Any]] | None) -> dict[str, Any] | None:
    """current_level() of an execution, reading its execution-level decisions (none read for an empty policy)."""
    if not policy:
        return None
    decisions = ApprovalDecision.objects.filter(execution_id=execution_id, step_run__isnull=True).only(
        "level", "user_id", "decision"
    )
    return current_level(policy, decisions)


def describe(level: dict[str, Any]) -> str:
    count = int(level.get("approvers", 1))
    return f"level {level['level']} needs {count} approval{'s' if count != 1 else ''} by role {level['role']!r}"
