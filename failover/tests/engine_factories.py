"""Test data for the engine's control layer: applications with approved runbooks, plans over them."""

from __future__ import annotations

from typing import Any

from django.utils import timezone

from plans.models import Application, DRPlan, PlanApprovalLevel
from plans.tests.factories import make_app, make_plan
from runbooks.choices import VersionStatus
from runbooks.models import RunbookVersion
from runbooks.services import import_runbook_document


def runbook_doc(slug: str, *, application: str | None = None, category: str = "failover", **extra: Any) -> dict:
    doc: dict[str, Any] = {
        "name": slug.replace("-", " ").title(),
        "slug": slug,
        "version": "1.0.0",
        "category": category,
        "steps": [
            {"id": "stop", "action": "noop", "estimated_duration": 5},
            {"id": "promote", "action": "noop", "needs": ["stop"], "estimated_duration": 30},
            {"id": "check", "action": "noop", "needs": ["promote"], "estimated_duration": 5},
        ],
    }
    if application:
        doc["application"] = application
    doc.update(extra)
    return doc


def make_runbook(slug: str, *, approved: bool = True, **kwargs: Any) -> RunbookVersion:
    version = import_runbook_document(runbook_doc(slug, **kwargs))
    if approved:
        RunbookVersion.objects.filter(pk=version.pk).update(status=VersionStatus.APPROVED, approved_at=timezone.now())
        version.refresh_from_db()
    return version


def three_app_plan(
    plan_id: str = "shop-dr", *, status: str = "active", categories: tuple[str, ...] = ("failover",), **extra: Any
) -> tuple[DRPlan, dict[str, Application]]:
    """db (tier 3) <- api (tier 2) <- web (tier 1), each with an approved runbook per category."""
    db = make_app("shop-db", tier=3)
    api = make_app("shop-api", tier=2, depends_on=(db,))
    web = make_app("shop-web", tier=1, depends_on=(api,))
    apps = {"db": db, "api": api, "web": web}
    for app in apps.values():
        for category in categories:
            make_runbook(f"{app.slug}-{category}", application=app.slug, category=category)
    plan = make_plan(plan_id, status=status, applications=list(apps.values()), **extra)
    return plan, apps


def add_approval_levels(plan: DRPlan, *levels: tuple[str, int]) -> None:
    for number, (role, approvers) in enumerate(levels, start=1):
        PlanApprovalLevel.objects.create(plan=plan, level=number, role=role, min_approvers=approvers)
