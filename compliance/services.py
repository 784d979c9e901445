"""Compliance use cases: generate a report from the platform's records, attest it (which signs its PDF), and
verify a PDF someone hands back. Views validate the request and call these; nothing here reads a request."""

from __future__ import annotations

import hashlib
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
    IssuedPdf,
)
from core import audit, checkpoints
from core.choices import AuditAction, AuthMethod
from core.exceptions import InvalidInput, PermissionDenied
from core.lookups import lookup_kwargs
from core.roles import APPROVER, AUDITOR, require_permission, role_names
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


EARLIEST = date(1970, 1, 1)


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
    if request.period_start < EARLIEST:
        raise InvalidInput(f"period_start: must be on or after {EARLIEST}.", field="period_start")
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


ATTEST_PERMISSION = "compliance.attest_compliancereport"
DEFAULT_STATEMENT = (
    "I attest that this report was generated by DRPlan from the organisation's disaster-recovery records for the "
    "scope and period stated, and that I have reviewed its findings and gaps."
)


def attester_label(user: Any) -> str:
    """'Full Name (auditor role, account name)' as printed in the report."""
    roles = role_names(user)
    role = "admin" if roles is None else next((r for r in (AUDITOR, APPROVER) if r in roles), "admin")
    name = user.get_full_name() or user.get_username()
    return f"{name} ({role} role, account {user.get_username()})"


def attest_report(
    report: ComplianceReport,
    actor: Any,
    *,
    statement: str = "",
    auth_method: str = AuthMethod.CLI,
    now: datetime | None = None,
) -> ComplianceReport:
    """A named person with the auditor or approver role attests the report: its PDF is rendered with the
    attestation, signed (PAdES) with the organisation's key and issued once; the report never changes again."""
    from compliance import pdf, signing

    require_permission(actor, ATTEST_PERMISSION, "attest compliance reports", system=False)
    roles = role_names(actor)
    if roles is not None and not ({AUDITOR, APPROVER} & roles):
        raise PermissionDenied("Only a person with the auditor or approver role may attest a compliance report.")
    ensure_draft(report)
    now = now or timezone.now()
    report.attested_by = actor
    report.attested_at = now
    report.attestation_name = attester_label(actor)
    report.attestation_statement = (statement or DEFAULT_STATEMENT).strip()
    identity = signing_identity()
    signed = signing.sign_pdf(
        pdf.render_pdf(report),
        reason=f"Attested {framework_label(report)} compliance report #{report.pk}",
        name=report.attestation_name,
        identity=identity,
    )
    digest = hashlib.sha256(signed).hexdigest()
    with transaction.atomic():
        changed = ComplianceReport.objects.filter(pk=report.pk, attested_at__isnull=True).update(
            attested_by=actor,
            attested_at=now,
            attestation_name=report.attestation_name,
            attestation_statement=report.attestation_statement,
        )
        if not changed:
            raise AttestedReportError(f"Compliance report #{report.pk} was attested meanwhile.")
        IssuedPdf.objects.create(
            report=report,
            pdf=signed,
            sha256=digest,
            size=len(signed),
            signed_at=now,
            signer_subject=identity.subject,
            signer_fingerprint=identity.fingerprint,
        )
        audit.record(
            AuditAction.UPDATE,
            report,
            actor=actor,
            auth_method=auth_method,
            before={"state": "draft"},
            after={
                "state": "attested",
                "attested_by": report.attestation_name,
                "pdf_sha256": digest,
                "signer_fingerprint": identity.fingerprint,
            },
            comment="attested and signed",
        )
    return ComplianceReport.objects.select_related("issued_pdf").get(pk=report.pk)


def framework_label(report: ComplianceReport) -> str:
    return dict(ComplianceFramework.choices).get(report.framework, report.framework)


def signing_identity() -> Any:
    from core.signing import identity

    return identity()


def report_pdf(report: ComplianceReport) -> bytes:
    """The attested report's signed PDF as issued, or a draft rendered now (unsigned, marked as a draft)."""
    from compliance import pdf

    issued = IssuedPdf.objects.filter(report=report).first()
    return bytes(issued.pdf) if issued is not None else pdf.render_pdf(report)


def verify_pdf(data: bytes) -> dict[str, Any]:
    """Check an uploaded PDF: its signature (intact, valid, by a certificate that chains to a trust root, over
    the whole file), and that it is the PDF DRPlan issued for an attested report with the same content.
    A file that is not a PDF, or a PDF without a signature, is InvalidInput (400, field `file`); everything
    else is a result with a reason."""
    from compliance import signing

    try:
        reader = signing.read_pdf(data)
    except ValueError as exc:
        raise InvalidInput(f"file: {exc}.", field="file") from exc
    if not reader.embedded_signatures:
        raise InvalidInput(
            "file: the PDF carries no signature: only the signed PDF of an attested report can be verified "
            "(a draft's PDF is not signed).",
            field="file",
        )
    result = signing.Verification(sha256=hashlib.sha256(data).hexdigest())
    signature_ok = signing.verify_signature(reader, result)
    reference = signing.report_reference(reader)
    report = ComplianceReport.objects.filter(pk=reference[0]).first() if reference else None
    issued = IssuedPdf.objects.filter(report=report).first() if report else None
    result.report = report.pk if report else None
    result.checks["report_found"] = report is not None
    result.checks["report_attested"] = bool(report and report.attested_at)
    result.checks["content_matches_report"] = bool(report and reference and reference[1] == report.content_sha256)
    result.checks["matches_issued_pdf"] = bool(issued and issued.sha256 == result.sha256)
    if signature_ok:
        if reference is None:
            result.reason = "the PDF names no DRPlan report (its keywords hold no report reference)"
        elif report is None:
            result.reason = f"report #{reference[0]} named by the PDF does not exist here"
        elif not result.checks["content_matches_report"]:
            result.reason = f"the PDF's content hash differs from report #{report.pk}'s stored content"
        elif issued is None:
            result.reason = f"report #{report.pk} is not attested: DRPlan issued no signed PDF for it"
        elif not result.checks["matches_issued_pdf"]:
            result.reason = f"the PDF differs from the signed PDF DRPlan issued for report #{report.pk}"
    result.valid = signature_ok and not result.reason
    if result.valid:
        result.reason = (
            f"valid: signed by {result.signer}, trusted, unchanged since signing, and identical to the PDF issued "
            f"for report #{report.pk}"  # type: ignore[union-attr]
        )
    return result.as_dict()
