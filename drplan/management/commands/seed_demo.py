"""Load the demo organisation (drplan/demo/organisation.yaml), its runbooks (drplan/demo/runbooks.yaml, approved
through the approval service by the users organisation.yaml names) and the runbook templates.

Idempotent: every row is looked up by its natural key; a row is written (and audited as
the system, auth method CLI) only when it is missing or differs from the data file.
Dates in the file are relative and set only when a row is created, so re-running on
another day changes nothing. Passwords are set only when a user is created.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import yaml
from django.conf import settings
from django.contrib.auth.models import Group, User
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import models, transaction
from django.utils import timezone

from analytics.models import (
    ActionItem,
    BusinessProcess,
    DRTestResult,
    ImpactAnalysis,
    RTOTarget,
    TestFinding,
    TestParticipant,
)
from compliance.models import ComplianceReport
from core import audit
from core.choices import AuditAction, AuthMethod
from core.roles import ADMIN, setup_roles
from plans import costs
from plans.models import (
    Application,
    ApplicationDependency,
    DRPlan,
    RecoveryStrategy,
    Site,
    StrategyCondition,
    StrategyStep,
    ValidationCheck,
)

DEMO_FILE = Path(__file__).resolve().parents[2] / "demo" / "organisation.yaml"
DEMO_RUNBOOKS_FILE = DEMO_FILE.with_name("runbooks.yaml")
TEMPLATES_DIR = Path(settings.BASE_DIR) / "runbooks" / "templates"


def find_cycle(edges: dict[str, list[str]]) -> list[str] | None:
    """Return one dependency cycle as a list of nodes (first == last), or None if acyclic."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in edges.get(node, []):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


class Seeder:
    """Writes the demo data; counts what it created and updated per model."""

    def __init__(self, data: dict[str, Any], today: date, *, reports: bool = True) -> None:
        self.data = data
        self.today = today
        self.reports = reports  # attested compliance reports: a few seconds each (PDF rendering and signing)
        self.created: Counter[str] = Counter()
        self.updated: Counter[str] = Counter()
        self.users: dict[str, User] = {}
        self.sites: dict[str, Site] = {}
        self.apps: dict[str, Application] = {}
        self.plans: dict[str, DRPlan] = {}
        self.new: set[tuple[str, int]] = set()  # (label, pk) created by this run
        self.demo_runbooks: list[str] = []

    # -- helpers -------------------------------------------------------------
    def _days(self, spec: dict[str, Any], ago: str, ahead: str) -> date | None:
        if spec.get(ago) is not None:
            return self.today - timedelta(days=spec[ago])
        if spec.get(ahead) is not None:
            return self.today + timedelta(days=spec[ahead])
        return None

    def _at(self, days_ago: int) -> datetime:
        return datetime.combine(self.today - timedelta(days=days_ago), time(8, 0), tzinfo=UTC)

    @staticmethod
    def _differs(obj: models.Model, values: dict[str, Any]) -> bool:
        for name, value in values.items():
            field = obj._meta.get_field(name)
            if field.is_relation:
                if getattr(obj, field.attname) != (value.pk if value is not None else None):
                    return True
            elif getattr(obj, name) != (field.to_python(value) if value is not None else None):
                return True
        return False

    def upsert(
        self,
        model: type[models.Model],
        lookup: dict[str, Any],
        values: dict[str, Any],
        create_values: dict[str, Any] | None = None,
    ) -> models.Model:
        """update_or_create keyed on `lookup`, but writes and audits only on a real change.
        `create_values` (relative dates, authorship) are set only when the row is created."""
        label = model._meta.label
        obj = model.objects.filter(**lookup).first()
        if obj is None:
            obj = model(**lookup, **values, **(create_values or {}))
            obj.full_clean(validate_unique=False, validate_constraints=False)
            obj.save()
            audit.record(AuditAction.CREATE, obj, auth_method=AuthMethod.CLI, after=audit.snapshot(obj))
            self.created[label] += 1
            self.new.add((label, obj.pk))
        elif self._differs(obj, values):
            before = audit.snapshot(obj)
            for name, value in values.items():
                setattr(obj, name, value)
            obj.full_clean(validate_unique=False, validate_constraints=False)
            obj.save()
            audit.record(AuditAction.UPDATE, obj, auth_method=AuthMethod.CLI, before=before, after=audit.snapshot(obj))
            self.updated[label] += 1
        return obj

    def set_m2m(self, obj: models.Model, name: str, targets: list[models.Model]) -> None:
        manager = getattr(obj, name)
        if set(manager.values_list("pk", flat=True)) != {t.pk for t in targets}:
            before = audit.snapshot(obj)
            manager.set(targets)
            audit.record(
                AuditAction.UPDATE,
                obj,
                auth_method=AuthMethod.CLI,
                before=before,
                after=audit.snapshot(obj),
                comment=f"demo data: {name} set",
            )
            if (obj._meta.label, obj.pk) not in self.new:
                self.updated[obj._meta.label] += 1

    # -- sections ------------------------------------------------------------
    def seed_users(self) -> None:
        for spec in self.data["users"]:
            user = User.objects.filter(username=spec["username"]).first()
            is_admin = spec["role"] == ADMIN
            if user is None:
                user = User.objects.create_user(
                    username=spec["username"],
                    password=spec["password"],
                    first_name=spec.get("first_name", ""),
                    last_name=spec.get("last_name", ""),
                    is_staff=True,
                    is_superuser=is_admin,
                )
                self.created["auth.User"] += 1
                action = AuditAction.CREATE
            elif not user.is_staff or (is_admin and not user.is_superuser):
                user.is_staff = True
                user.is_superuser = user.is_superuser or is_admin
                user.save(update_fields=["is_staff", "is_superuser"])
                self.updated["auth.User"] += 1
                action = AuditAction.UPDATE
            else:
                action = None
            group = Group.objects.get(name=spec["role"])
            if not user.groups.filter(pk=group.pk).exists():
                user.groups.add(group)
                action = action or AuditAction.UPDATE
            if action:
                # No snapshot: it would carry the password hash.
                audit.record(
                    action,
                    user,
                    auth_method=AuthMethod.CLI,
                    after={"username": user.username, "is_staff": True, "is_superuser": user.is_superuser},
                    comment=f"demo user, role {spec['role']}",
                )
            self.users[spec["username"]] = user

    def seed_sites_and_applications(self) -> None:
        for spec in self.data["sites"]:
            values = {k: spec.get(k, "") for k in ("name", "kind", "location", "description")}
            self.sites[spec["code"]] = self.upsert(Site, {"code": spec["code"]}, values)

        edges = {spec["slug"]: list(spec.get("depends_on") or []) for spec in self.data["applications"]}
        unknown = {d for deps in edges.values() for d in deps} - set(edges)
        if unknown:
            raise CommandError(f"depends_on names unknown applications: {', '.join(sorted(unknown))}")
        if cycle := find_cycle(edges):
            raise CommandError(f"application dependencies form a cycle: {' -> '.join(cycle)}")

        for spec in self.data["applications"]:
            values = {k: spec.get(k, "") for k in ("name", "tier", "owner", "owner_email", "description")}
            values["site"] = self.sites[spec["site"]] if spec.get("site") else None
            self.apps[spec["slug"]] = self.upsert(Application, {"slug": spec["slug"]}, values)
        for slug, deps in edges.items():
            for dep in deps:
                self.upsert(ApplicationDependency, {"application": self.apps[slug], "depends_on": self.apps[dep]}, {})

        for spec in self.data["applications"]:
            t = spec["rto_target"]
            values = {
                "tier": spec["tier"],
                "rto_target_seconds": t["rto"],
                "rpo_target_seconds": t["rpo"],
                "availability_target_percent": t["availability"],
                "current_rto_seconds": t.get("current_rto"),
                "current_rpo_seconds": t.get("current_rpo"),
                "current_availability_percent": t.get("current_availability"),
                "trend": t.get("trend", "stable"),
                "sla_breach_threshold_seconds": t["sla_breach"],
                "breach_count": t.get("breaches", 0),
                "penalty_per_breach": t.get("penalty", "0"),
            }
            self.upsert(RTOTarget, {"application": self.apps[spec["slug"]]}, values)

    def seed_plans(self) -> None:
        plain = [
            "name",
            "description",
            "status",
            "strategy",
            "replication_mode",
            "failover_mode",
            "detection_window_seconds",
            "rto_seconds",
            "rpo_seconds",
            "data_loss_threshold_mb",
            "downtime_threshold_seconds",
            "test_frequency",
            "compliance_frameworks",
            "compliance_status",
            "dr_infrastructure_cost_monthly",
            "testing_cost_monthly",
            "downtime_cost_per_hour",
        ]
        for spec in self.data["plans"]:
            values = {k: spec[k] for k in plain if k in spec}
            values["primary_site"] = self.sites[spec["primary_site"]]
            values["dr_site"] = self.sites[spec["dr_site"]]
            create_values = {
                "last_audit_date": self._days(spec, "last_audit_days_ago", "last_audit_days_ahead"),
                "next_audit_date": self._days(spec, "next_audit_days_ago", "next_audit_days_ahead"),
                "created_by": self.users.get("approver"),
            }
            plan = self.upsert(DRPlan, {"plan_id": spec["plan_id"]}, values, create_values)
            self.plans[spec["plan_id"]] = plan
            self.set_m2m(plan, "applications", [self.apps[s] for s in spec["applications"]])
            self.set_m2m(plan, "sites", [self.sites[s] for s in spec["sites"]])
            for strategy in spec["strategies"]:
                self.seed_strategy(plan, strategy)
            for result in spec.get("test_results", []):
                self.seed_test_result(plan, result)

    def seed_strategy(self, plan: DRPlan, spec: dict[str, Any]) -> None:
        values = {k: spec[k] for k in ("kind", "description", "rollback_trigger") if k in spec}
        strategy = self.upsert(RecoveryStrategy, {"plan": plan, "name": spec["name"]}, values)
        for step in spec["steps"]:
            self.upsert(
                StrategyStep,
                {"strategy": strategy, "order": step["order"]},
                {
                    "action": step["action"],
                    "description": step.get("description", ""),
                    "estimated_duration_seconds": step.get("duration", 0),
                    "automation_enabled": step.get("automated", False),
                    "automation_script": step.get("script", ""),
                    "approval_required": step.get("approval_required", False),
                },
            )
        for cond in spec.get("conditions", []):
            self.upsert(StrategyCondition, {"strategy": strategy, **cond}, {})
        for check in spec.get("checks", []):
            values = {k: check.get(k) for k in ("check_type", "target", "threshold", "unit", "severity")}
            values["query"] = check.get("query", "")
            self.upsert(ValidationCheck, {"strategy": strategy, "name": check["name"]}, values)

    def seed_test_result(self, plan: DRPlan, spec: dict[str, Any]) -> None:
        values = {
            "test_type": spec["test_type"],
            "outcome": spec["outcome"],
            "target_rto_seconds": spec["target_rto"],
            "target_rpo_seconds": spec["target_rpo"],
            "actual_rto_seconds": spec.get("actual_rto"),
            "actual_rpo_seconds": spec.get("actual_rpo"),
            "data_loss_mb": spec.get("data_loss_mb"),
            "lessons_learned": spec.get("lessons_learned", ""),
            "recorded_by": self.users.get("approver"),
        }
        result = self.upsert(
            DRTestResult, {"plan": plan, "summary": spec["summary"]}, values, {"test_date": self._at(spec["days_ago"])}
        )
        for finding in spec.get("findings", []):
            self.upsert(
                TestFinding,
                {"test_result": result, "description": finding["description"]},
                {k: finding.get(k, "") for k in ("severity", "category", "remediation")},
            )
        for person in spec.get("participants", []):
            self.upsert(
                TestParticipant,
                {"test_result": result, "name": person["name"]},
                {
                    "user": self.users.get(person.get("user") or ""),
                    "role": person["role"],
                    "actions": person.get("actions", ""),
                },
            )
        for item in spec.get("action_items", []):
            self.upsert(
                ActionItem,
                {"test_result": result, "description": item["description"]},
                {"assignee": item["assignee"], "status": item.get("status", "open")},
                {"due_date": self._days(item, "due_days_ago", "due_days_ahead")},
            )

    def seed_business_processes(self) -> None:
        """Business processes with their cost curves and weekly profiles (checked as the API checks them)."""
        for spec in self.data.get("business_processes", []):
            name = spec["name"]
            try:
                curve = costs.validate_curve(spec.get("cost_curve") or [], f"{name}: cost_curve")
                profile = spec.get("weekly_profile") or []
                if isinstance(profile, dict):
                    open_hour, close_hour = profile.get("business_hours", [8, 18])
                    profile = costs.business_hours_profile(
                        open_hour=open_hour,
                        close_hour=close_hour,
                        **{k: float(profile[k]) for k in ("weekday", "evening", "weekend") if k in profile},
                    )
                profile = costs.validate_profile(profile, f"{name}: weekly_profile")
            except costs.CostModelError as exc:
                raise CommandError(exc.message) from None
            unknown = set(spec.get("applications", [])) - set(self.apps)
            if unknown:
                raise CommandError(f"{name}: unknown applications {', '.join(sorted(unknown))}")
            values = {
                "description": spec.get("description", ""),
                "owner": spec.get("owner", ""),
                "criticality": spec.get("criticality", "medium"),
                "revenue_per_hour": spec.get("revenue_per_hour", "0"),
                "employees": spec.get("employees", 0),
                "customers": spec.get("customers", 0),
                "regulatory_frameworks": list(spec.get("regulatory_frameworks", [])),
                "cost_curve": curve,
                "weekly_profile": profile,
            }
            process = self.upsert(BusinessProcess, {"name": name}, values)
            self.set_m2m(process, "applications", [self.apps[slug] for slug in spec.get("applications", [])])

    def seed_impact_analyses(self) -> None:
        for spec in self.data.get("impact_analyses", []):
            plan = self.plans[spec["plan"]] if spec.get("plan") else None
            values = {k: v for k, v in spec.items() if k not in ("plan", "scenario")}
            self.upsert(
                ImpactAnalysis,
                {"plan": plan, "scenario": spec["scenario"]},
                values,
                {"created_by": self.users.get("approver")},
            )

    def seed_compliance_reports(self) -> list[str]:
        """One attested, signed report per framework for the demo plans over the 12 months up to today, made by
        the same use cases as the API (generate, then attest): created once per framework."""
        from compliance.services import ReportRequest, attest_report, generate_report

        made = []
        for spec in self.data.get("compliance_reports", []):
            framework = spec["framework"]
            if ComplianceReport.objects.filter(framework=framework, attested_at__isnull=False).exists():
                continue
            attester = self.users[spec["attested_by"]]
            report = generate_report(
                ReportRequest(framework, self.today - timedelta(days=365), self.today, [], all_plans=True),
                actor=attester,
                auth_method=AuthMethod.CLI,
                organisation=self.data.get("organisation"),
            )
            attest_report(report, attester, auth_method=AuthMethod.CLI)
            self.created["compliance.ComplianceReport"] += 1
            made.append(f"{framework} #{report.pk}")
        return made

    def seed_secrets(self) -> None:
        """Create the secrets the templates reference, with placeholder values, if missing."""
        from core.models import Secret
        from core.secrets import create_secret

        for spec in self.data.get("secrets", []):
            if not Secret.objects.filter(name=spec["name"]).exists():
                create_secret(
                    spec["name"],
                    f"demo-placeholder-for-{spec['name']}",
                    description=spec.get("description", ""),
                    auth_method=AuthMethod.CLI,
                )
                self.created["core.Secret"] += 1

    def seed_monitors(self) -> None:
        """The demo's monitors (disabled: example hosts) with generated history, then the SLA violations
        that the demo's test results and cadences amount to (analytics/monitoring/)."""
        from analytics.monitoring import demo, services, violations
        from analytics.monitoring.models import Monitor

        specs = self.data.get("monitors", [])
        services.ensure_monitors(
            [{**spec, "enabled": False} for spec in specs if not Monitor.objects.filter(slug=spec["slug"]).exists()],
            comment="demo data",
        )
        now = timezone.now()
        for spec in specs:
            demo.seed_history(Monitor.objects.get(slug=spec["slug"]), spec.get("history") or {}, now)
        violations.evaluate(now)

    def seed_runbook_templates(self) -> list[str]:
        """Import every runbook template; the import is idempotent for an unchanged document."""
        from runbooks.services import import_runbook_document

        imported = []
        for path in sorted(TEMPLATES_DIR.glob("*.yaml")):
            document = yaml.safe_load(path.read_text())
            document.pop("template", None)  # a library template's record, not part of the runbook document
            version = import_runbook_document(document, actor=None, auth_method=AuthMethod.CLI)
            imported.append(f"{version} ({'new' if getattr(version, 'was_created', True) else 'unchanged'})")
        return imported

    def seed_demo_runbooks(self) -> list[str]:
        """Import the demo organisation's runbooks as the system, submit each version and record the approvals
        `runbook_approvals` names, level by level, through runbooks.services (the API's rules: permission,
        separation of duties, the level's role, order). Idempotent: an approval already recorded is not asked
        again; a version with fewer approvers than levels stays pending."""
        from runbooks import services
        from runbooks.choices import Decision, VersionStatus

        approvals = {spec["runbook"]: spec["approved_by"] for spec in self.data.get("runbook_approvals", [])}
        if not approvals:
            return []
        documents = yaml.safe_load(DEMO_RUNBOOKS_FILE.read_text())
        unknown = set(approvals) - {doc["slug"] for doc in documents}
        if unknown:
            raise CommandError(f"runbook_approvals names runbooks not in {DEMO_RUNBOOKS_FILE.name}: {sorted(unknown)}")
        done = []
        for doc in documents:
            version = services.import_runbook_document(doc, actor=None, auth_method=AuthMethod.CLI)
            if version.was_created:
                self.created["runbooks.RunbookVersion"] += 1
            if version.status == VersionStatus.DRAFT:
                version = services.submit_for_approval(version, None, auth_method=AuthMethod.CLI)
            decided = set(version.decisions.values_list("user__username", flat=True))
            for username in approvals.get(doc["slug"], []):
                if version.status != VersionStatus.PENDING_APPROVAL or username in decided:
                    continue
                version = services.decide(
                    version,
                    self.users[username],
                    Decision.APPROVE,
                    "Reviewed for the demo organisation: steps, order and owners checked.",
                    auth_method=AuthMethod.CLI,
                )
            done.append(f"{doc['slug']}@{version.version} {version.status}")
        return done

    def run(self) -> list[str]:
        setup_roles()
        self.seed_users()
        self.seed_sites_and_applications()
        self.seed_plans()
        self.seed_business_processes()
        self.seed_impact_analyses()
        self.seed_secrets()
        self.seed_monitors()
        runbooks = self.seed_runbook_templates()
        self.demo_runbooks = self.seed_demo_runbooks()
        if self.reports:
            self.seed_compliance_reports()
        return runbooks


def load_demo_data(path: Path = DEMO_FILE) -> dict[str, Any]:
    with path.open() as fh:
        return yaml.safe_load(fh)


class Command(BaseCommand):
    help = "Load the Northwind Retail demo organisation and the runbook templates (idempotent)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--if-empty", action="store_true", help="Do nothing if any DR plan exists.")
        parser.add_argument("--file", type=Path, default=DEMO_FILE, help="Organisation data file (YAML).")
        parser.add_argument(
            "--skip-reports", action="store_true", help="Do not generate and attest the compliance reports."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["if_empty"] and DRPlan.objects.exists():
            self.stdout.write("seed_demo: DR plans already exist; nothing to do (--if-empty).")
            return
        seeder = Seeder(load_demo_data(options["file"]), timezone.now().date(), reports=not options["skip_reports"])
        with transaction.atomic():
            runbooks = seeder.run()
        created = sum(seeder.created.values())
        updated = sum(seeder.updated.values())
        self.stdout.write(
            self.style.SUCCESS(
                f"seed_demo: {seeder.data.get('organisation', 'demo')}: {created} rows created, {updated} updated; "
                f"{len(runbooks)} runbook templates."
            )
        )
        for label in sorted(set(seeder.created) | set(seeder.updated)):
            self.stdout.write(f"  {label}: +{seeder.created[label]} ~{seeder.updated[label]}")
        if seeder.demo_runbooks:
            self.stdout.write("  demo runbooks: " + ", ".join(seeder.demo_runbooks))
        if runbooks:
            self.stdout.write("  runbook templates: " + ", ".join(runbooks))
