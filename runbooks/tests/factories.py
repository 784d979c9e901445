"""Shared test data for runbook tests."""

from __future__ import annotations

from typing import Any

from drplan.management.commands.seed_demo import load_demo_data
from runbooks.models import ApprovalLevel, Runbook, RunbookParameter, RunbookStep, RunbookVersion

# The demo organisation's applications: the ones the runbook templates name.
APPLICATION_SLUGS = [app["slug"] for app in load_demo_data()["applications"]]

BASE_DOC: dict[str, Any] = {
    "name": "Test failover",
    "slug": "test-failover",
    "version": "1.0.0",
    "parameters": {"host": {"type": "string", "default": "db.example.internal"}},
    "steps": [
        {"id": "check", "title": "Check", "action": "tcp", "with": {"host": "{{ params.host }}", "port": 5432}},
        {"id": "promote", "action": "shell", "with": {"argv": ["pg_ctl", "promote"]}, "needs": ["check"]},
        {
            "id": "validate",
            "action": "http",
            "with": {"url": "https://x.example/{{ steps.promote.output }}"},
            "needs": ["promote"],
            "timeout": "1m30s",
        },
    ],
}


def row_counts() -> tuple[int, ...]:
    return (
        Runbook.objects.count(),
        RunbookVersion.objects.count(),
        RunbookStep.objects.count(),
        RunbookParameter.objects.count(),
        ApprovalLevel.objects.count(),
    )
