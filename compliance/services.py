"""Compliance use cases: generate a report from the platform's records, attest it (which signs its PDF), and
verify a PDF someone hands back. Views validate the request and call these; nothing here reads a request."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from compliance import content as report_content
from compliance.catalogs import ensure_catalogs
from compliance.evidence import Evidence
from compliance.models import (
    AttestedReportError,
    ComplianceReport,
    ComplianceReportPlan,
    ComplianceRequirement,
    Framework,
)
from core import audit, checkpoints
from core.choices import AuditAction, AuthMethod
from core.exceptions import InvalidInput
from core.lookups import lookup_kwargs
from plans.choices import ComplianceFramework, PlanStatus
from plans.models import DRPlan


@dataclass(frozen=True)
class ReportRequest:
    framework: str
    period_start: date
    period_end: date
    plans: list[Any]  # ids or plan_ids; empty with all_plans
    all_plans: bool = False


def resolve_plans(request: ReportRequest) -> list[DRPlan]:
    """The plans a request names (ids or plan_ids), or every plan that is not archived."""
    if request.all_plans:
        if request.plans:
            raise InvalidInput("plans: name plans or set all_plans, not both.", field="plans")
        found = list(DRPlan.objects.exclude(status=PlanStatus.ARCHIVED).order_by("plan_id"))
        if not found:
            raise InvalidInput("all_plans: there is no plan that is not archived.", field="all_plans")
        return found
    if not request.plans:
        raise InvalidInput("plans: name at least one plan (id or plan_id), or set all_plans.", field="plans")
    found, missing = [], []
    for value in dict.fromkeys(request.plans):
        plan = DRPlan.objects.filter(**lookup_kwargs(value, "plan_id")).first()
        (found.append(plan) if plan else missing.append(str(value)))
    if missing:
        raise InvalidInput(f"plans: no plan {', '.join(repr(m) for m in missing)}.", field="plans")
    return sorted({p.pk: p for p in found}.values(), key=lambda p: p.plan_id)


def validate_request(request: ReportRequest, now: datetime) -> None:
    if request.framework not in ComplianceFramework.values:
        raise InvalidInput(
            f"framework: unknown framework {request.framework!r}; one of {', '.join(ComplianceFramework.values)}.",
            field="framework",
        )
    if request.period_end < request.period_start:
        raise InvalidInput(
            f"period_end: {request.period_end} is before period_start {request.period_start}.", field="period_end"
        )
    if request.period_start > timezone.localdate(now):
        raise InvalidInput(
            f"period_start: {request.period_start} is in the future; nothing in it can be evidence yet.",
            field="period_start",
        )


def generate_report(
    request: ReportRequest,
    *,
    actor: Any = None,
    auth_method: str = AuthMethod.CLI,
    now: datetime | None = None,
    organisation: str | None = None,
) -> ComplianceReport:
    """Evaluate the framework's requirements for the plans and period from the records, freeze the result in a
    new draft report (audited), and sign an audit checkpoint of the chain head it names."""
    now = now or timezone.now()
    validate_request(request, now)
    plans = resolve_plans(request)
    ensure_catalogs()
    framework = Framework.objects.get(code=request.framework)
    ev = Evidence.load([p.pk for p in plans], request.period_start, request.period_end, now)
    head = checkpoints.head()
    checkpoint = checkpoints.sign_head(reason=f"{framework.code} report")
    frozen = report_content.build(
        framework=framework,
        ev=ev,
        all_plans=request.all_plans,
        organisation=organisation or settings.ORGANISATION_NAME,
        generated_by=report_content._person(actor) if actor is not None else "system",
        audit_head=head,
        checkpoint={"seq": checkpoint.seq, "hash": checkpoint.hash, "at": checkpoint.at},
    )
    summary = frozen["summary"]
    testing = frozen["testing"]
    with transaction.atomic():
        report = ComplianceReport.objects.create(
            framework=framework.code,
            all_plans=request.all_plans,
            period_start=request.period_start,
            period_end=request.period_end,
            tests_required=sum(r["required"] for r in testing),
            tests_performed=sum(r["done"] for r in testing),
            tests_passed=sum(r["passed"] for r in testing),
            overall_status=summary["overall_status"],
            summary=summary["text"],
            content=frozen,
            content_sha256=report_content.content_hash(frozen),
            audit_head_seq=head[0],
            audit_head_hash=head[1],
            created_by=actor if getattr(actor, "pk", None) else None,
        )
        ComplianceReportPlan.objects.bulk_create([ComplianceReportPlan(report=report, plan=p) for p in plans])
        ComplianceRequirement.objects.bulk_create(
            [
                ComplianceRequirement(
                    report=report,
                    requirement_id=r["ref"],
                    title=r["title"][:300],
                    status=r["status"],
                    evidence="\n".join(e["label"] for e in r["evidence"]),
                    gaps="\n".join(r["gaps"]),
                    position=position,
                    rules=[{k: rule[k] for k in ("id", "status", "gaps")} for rule in r["rules"]],
                )
                for position, r in enumerate(frozen["requirements"], start=1)
            ]
        )
        audit.record(
            AuditAction.CREATE,
            report,
            actor=actor,
            auth_method=auth_method,
            after={
                "framework": report.framework,
                "plans": [p.plan_id for p in plans],
                "period": [str(report.period_start), str(report.period_end)],
                "overall_status": report.overall_status,
                "content_sha256": report.content_sha256,
            },
        )
    return report


def ensure_draft(report: ComplianceReport) -> None:
    if report.attested_at is not None:
        raise AttestedReportError(f"Compliance report #{report.pk} is attested and cannot change.")
