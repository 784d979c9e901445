from __future__ import annotations

from typing import Any

import pytest
from django.contrib import admin
from django.contrib.auth.models import User
from django.test import Client, RequestFactory
from django.urls import reverse

from analytics.models import ActionItem, ProbeSample, RollupState, SampleRollup, SLAViolation
from core.admin_mixins import AuditedModelAdmin, human_duration
from core.models import AuditEntry
from core.tests.sample import make_sample_data
from failover.models import ApprovalDecision, ExecutionEvent, FailoverExecution, StepRun, ValidationResult
from plans.models import Application, ApplicationDependency, DRPlan, RecoveryStrategy
from runbooks.models import RunbookApproval, RunbookImport, RunbookVersion

EVIDENCE = {
    FailoverExecution,
    StepRun,
    ExecutionEvent,
    ValidationResult,
    ApprovalDecision,
    AuditEntry,
    RunbookApproval,
    RunbookImport,
    ProbeSample,  # monitoring's measurements (analytics/monitoring/admin.py): read only
    SampleRollup,
    RollupState,
    SLAViolation,
}
DOMAIN_APPS = {"plans", "runbooks", "failover", "analytics", "compliance"}


def _url(model: type, view: str, *args: Any) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


def _client(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def sample(users: dict) -> dict[str, Any]:
    return make_sample_data(users["approver"])


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (None, "—"),
        (0, "0 s"),
        (45, "45 s"),
        (90, "1 min 30 s"),
        (3600, "1 h"),
        (5400, "1 h 30 min"),
        (93784, "26 h 03 min"),
        (302400, "3 d 12 h"),
        (0.4, "0 s"),
    ],
)
def test_human_duration(seconds: float | None, text: str) -> None:
    assert human_duration(seconds) == text


def test_admin_site_is_branded() -> None:
    assert admin.site.site_header == "DRPlan administration"
    assert admin.site.site_title == "DRPlan administration"


def test_every_domain_model_is_registered_and_writable_ones_are_audited() -> None:
    from django.apps import apps

    for label in DOMAIN_APPS:
        for model in apps.get_app_config(label).get_models():
            assert model in admin.site._registry, f"{model._meta.label} has no admin"
            model_admin = admin.site._registry[model]
            if model not in EVIDENCE:
                assert isinstance(model_admin, AuditedModelAdmin), f"{model._meta.label} admin is not audited"


@pytest.mark.django_db
def test_every_admin_page_renders_for_superuser(users: dict, sample: dict) -> None:
    superuser = users["admin"]
    client = _client(superuser)
    request = RequestFactory().get("/admin/")
    request.user = superuser
    for model, model_admin in admin.site._registry.items():
        name = model._meta.label
        response = client.get(_url(model, "changelist"))
        assert response.status_code == 200, f"{name} changelist: {response.status_code}"

        add_status = client.get(_url(model, "add")).status_code
        if model in EVIDENCE:
            assert add_status == 403, f"{name} is evidence; add page gave {add_status}"
        else:
            assert add_status == (200 if model_admin.has_add_permission(request) else 403), name

        obj = model._default_manager.first()
        if obj is not None:
            response = client.get(_url(model, "change", obj.pk))
            assert response.status_code == 200, f"{name} change page: {response.status_code}"


@pytest.mark.django_db
def test_changelists_show_formatted_columns(users: dict, sample: dict) -> None:
    client = _client(users["admin"])
    plans = client.get(_url(DRPlan, "changelist")).content.decode()
    assert "payments-dr" in plans and "1 h 30 min" in plans and "5 min" in plans
    executions = client.get(_url(FailoverExecution, "changelist")).content.decode()
    assert "1 h 01 min" in executions
    events = client.get(_url(ExecutionEvent, "changelist"), {"execution__id__exact": sample["execution"].pk})
    assert events.status_code == 200
    assert "promoted" in events.content.decode()


@pytest.mark.django_db
@pytest.mark.parametrize("model", sorted(EVIDENCE - {AuditEntry}, key=lambda m: m._meta.label))
def test_evidence_is_view_only(users: dict, sample: dict, model: type) -> None:
    client = _client(users["admin"])
    obj = model._default_manager.first()
    response = client.get(_url(model, "change", obj.pk))
    assert response.status_code == 200
    assert response.context["has_change_permission"] is False
    assert b'name="_save"' not in response.content
    assert client.post(_url(model, "change", obj.pk), {}).status_code == 403
    assert client.get(_url(model, "delete", obj.pk)).status_code == 403
    assert model._default_manager.filter(pk=obj.pk).exists()


@pytest.mark.django_db
def test_execution_page_lists_step_runs_and_validations_read_only(users: dict, sample: dict) -> None:
    response = _client(users["admin"]).get(_url(FailoverExecution, "change", sample["execution"].pk))
    formsets = {f.formset.model: f for f in response.context["inline_admin_formsets"]}
    assert set(formsets) == {StepRun, ValidationResult}
    for inline in formsets.values():
        assert (inline.has_add_permission, inline.has_change_permission, inline.has_delete_permission) == (
            False,
            False,
            False,
        )
    assert "Promote" in response.content.decode()


@pytest.mark.django_db
def test_frozen_runbook_version_is_read_only(users: dict, sample: dict) -> None:
    client = _client(users["admin"])
    approved = sample["approved"]
    response = client.get(_url(RunbookVersion, "change", approved.pk))
    assert response.status_code == 200
    assert response.context["has_change_permission"] is False
    inlines = response.context["inline_admin_formsets"]
    assert len(inlines) == 4
    assert all(not (f.has_add_permission or f.has_change_permission or f.has_delete_permission) for f in inlines)
    assert client.post(_url(RunbookVersion, "change", approved.pk), {"version": "9.9.9"}).status_code == 403
    assert client.get(_url(RunbookVersion, "delete", approved.pk)).status_code == 403
    approved.refresh_from_db()
    assert approved.version == "1.0.0"

    # Drafts too: content is written through the builder/API, which validate the whole document and
    # record the editor as a contributor (who may then not approve it); the admin links there.
    draft = client.get(_url(RunbookVersion, "change", sample["draft"].pk))
    assert draft.context["has_change_permission"] is False
    assert all(not (f.has_add_permission or f.has_change_permission) for f in draft.context["inline_admin_formsets"])
    assert "/builder/runbooks/db-failover/?version=1.1.0" in draft.content.decode()
    assert client.post(_url(RunbookVersion, "change", sample["draft"].pk), {"version": "9.9.9"}).status_code == 403


@pytest.mark.django_db
def test_bulk_delete_refuses_frozen_versions(users: dict, sample: dict) -> None:
    client = _client(users["admin"])
    changelist = _url(RunbookVersion, "changelist")
    both = [sample["draft"].pk, sample["approved"].pk]
    response = client.post(changelist, {"action": "delete_selected", "_selected_action": both, "post": "yes"})
    assert response.status_code == 200
    assert response.context["perms_lacking"]
    assert RunbookVersion.objects.count() == 2

    draft_only = {"action": "delete_selected", "_selected_action": [sample["draft"].pk], "post": "yes"}
    assert client.post(changelist, draft_only).status_code == 302
    assert list(RunbookVersion.objects.values_list("pk", flat=True)) == [sample["approved"].pk]


@pytest.mark.django_db
def test_viewer_sees_lists_but_cannot_add(users: dict, sample: dict) -> None:
    client = _client(users["viewer"])
    for model in (DRPlan, Application, RecoveryStrategy, RunbookVersion, FailoverExecution, ActionItem):
        assert client.get(_url(model, "changelist")).status_code == 200, model._meta.label
        assert client.get(_url(model, "add")).status_code == 403, model._meta.label
    plan = sample["plan"]
    response = client.get(_url(DRPlan, "change", plan.pk))
    assert response.status_code == 200
    assert response.context["has_change_permission"] is False
    assert client.post(_url(DRPlan, "change", plan.pk), {"name": "x"}).status_code == 403
    assert client.get(_url(AuditEntry, "changelist")).status_code == 403


@pytest.mark.django_db
def test_audit_log_admin_is_for_auditors_and_read_only(users: dict, sample: dict) -> None:
    entry = sample["entry"]
    for role in ("auditor", "admin"):
        client = _client(users[role])
        assert client.get(_url(AuditEntry, "changelist")).status_code == 200
        response = client.get(_url(AuditEntry, "change", entry.pk))
        assert response.status_code == 200
        assert "payments-dr" in response.content.decode()
        assert client.get(_url(AuditEntry, "add")).status_code == 403
        assert client.post(_url(AuditEntry, "change", entry.pk), {}).status_code == 403
        assert client.get(_url(AuditEntry, "delete", entry.pk)).status_code == 403
    for role in ("viewer", "operator", "approver"):
        assert _client(users[role]).get(_url(AuditEntry, "changelist")).status_code == 403, role
    auditor = _client(users["auditor"])
    assert auditor.get(_url(DRPlan, "changelist")).status_code == 200
    assert auditor.get(_url(DRPlan, "add")).status_code == 403


def _plan_form(**overrides: Any) -> dict[str, Any]:
    data = {
        "plan_id": "core-dr",
        "name": "Core banking",
        "description": "",
        "status": "draft",
        "applications": [],
        "sites": [],
        "rto_seconds": "3600",
        "rpo_seconds": "60",
        "data_loss_threshold_mb": "0",
        "downtime_threshold_seconds": "0",
        "strategy": "active_passive",
        "primary_site": "",
        "dr_site": "",
        "replication_mode": "asynchronous",
        "failover_mode": "manual",
        "test_frequency": "quarterly",
        "compliance_frameworks": "[]",
        "compliance_status": "unknown",
        "last_audit_date": "",
        "next_audit_date": "",
        "dr_infrastructure_cost_monthly": "0",
        "testing_cost_monthly": "0",
        "downtime_cost_per_hour": "0",
        "detection_window_seconds": "10",
        "approval_timeout_seconds": "",
        "recovery_strategies-TOTAL_FORMS": "0",
        "recovery_strategies-INITIAL_FORMS": "0",
        "recovery_strategies-MIN_NUM_FORMS": "0",
        "recovery_strategies-MAX_NUM_FORMS": "1000",
        "approval_levels-TOTAL_FORMS": "0",
        "approval_levels-INITIAL_FORMS": "0",
        "approval_levels-MIN_NUM_FORMS": "0",
        "approval_levels-MAX_NUM_FORMS": "1000",
    }
    data.update(overrides)
    return data


def _assert_saved(response: Any) -> None:
    if response.status_code != 302:
        context = response.context or {}
        errors = context.get("errors")
        raise AssertionError(f"admin form not saved ({response.status_code}): {errors}")


@pytest.mark.django_db
def test_admin_crud_of_a_plan_is_audited(users: dict, sample: dict) -> None:
    approver = users["approver"]
    client = _client(approver)
    db = Application.objects.get(slug="db")
    start = AuditEntry.objects.count()

    # Create, with one recovery strategy in the inline.
    response = client.post(
        _url(DRPlan, "add"),
        _plan_form(
            applications=[db.pk],
            **{
                "recovery_strategies-TOTAL_FORMS": "1",
                "recovery_strategies-0-name": "To AMS",
                "recovery_strategies-0-kind": "failover",
                "recovery_strategies-0-rollback_trigger": "any_check_fails",
            },
        ),
    )
    _assert_saved(response)
    plan = DRPlan.objects.get(plan_id="core-dr")
    strategy = plan.recovery_strategies.get()
    assert plan.created_by == approver
    created = list(AuditEntry.objects.filter(seq__gt=start).order_by("seq"))
    assert [(e.action, e.object_type, e.object_id) for e in created] == [
        ("create", "plans.drplan", str(plan.pk)),
        ("create", "plans.recoverystrategy", str(strategy.pk)),
    ]
    plan_entry = created[0]
    assert (plan_entry.actor_username, plan_entry.actor_id, plan_entry.auth_method) == (
        "approver",
        approver.pk,
        "session",
    )
    assert plan_entry.before is None
    assert plan_entry.after["name"] == "Core banking"
    assert plan_entry.after["applications"] == [db.pk]

    # Change the plan and delete the strategy through the inline.
    mark = AuditEntry.objects.count()
    response = client.post(
        _url(DRPlan, "change", plan.pk),
        _plan_form(
            name="Core banking v2",
            rto_seconds="1800",
            applications=[db.pk],
            **{
                "recovery_strategies-TOTAL_FORMS": "1",
                "recovery_strategies-INITIAL_FORMS": "1",
                "recovery_strategies-0-id": str(strategy.pk),
                "recovery_strategies-0-plan": str(plan.pk),
                "recovery_strategies-0-name": "To AMS",
                "recovery_strategies-0-kind": "failover",
                "recovery_strategies-0-rollback_trigger": "any_check_fails",
                "recovery_strategies-0-DELETE": "on",
            },
        ),
    )
    _assert_saved(response)
    changed = list(AuditEntry.objects.filter(seq__gt=mark).order_by("seq"))
    assert [(e.action, e.object_type) for e in changed] == [
        ("update", "plans.drplan"),
        ("delete", "plans.recoverystrategy"),
    ]
    update, strategy_delete = changed
    assert (update.before["name"], update.after["name"]) == ("Core banking", "Core banking v2")
    assert (update.before["rto_seconds"], update.after["rto_seconds"]) == (3600, 1800)
    assert strategy_delete.object_id == str(strategy.pk)
    assert strategy_delete.before["name"] == "To AMS"
    assert strategy_delete.after is None
    assert not RecoveryStrategy.objects.filter(pk=strategy.pk).exists()

    # Saving without changes writes nothing.
    mark = AuditEntry.objects.count()
    _assert_saved(
        client.post(
            _url(DRPlan, "change", plan.pk),
            _plan_form(name="Core banking v2", rto_seconds="1800", applications=[db.pk]),
        )
    )
    assert AuditEntry.objects.count() == mark

    # Delete.
    response = client.post(_url(DRPlan, "delete", plan.pk), {"post": "yes"})
    assert response.status_code == 302
    deleted = AuditEntry.objects.filter(seq__gt=mark).get()
    assert (deleted.action, deleted.object_id, deleted.actor_username) == ("delete", str(plan.pk), "approver")
    assert deleted.before["plan_id"] == "core-dr"
    assert deleted.after is None
    assert not DRPlan.objects.filter(pk=plan.pk).exists()


@pytest.mark.django_db
def test_admin_bulk_delete_is_audited_per_object(users: dict, sample: dict) -> None:
    items = list(ActionItem.objects.all())
    mark = AuditEntry.objects.count()
    response = _client(users["approver"]).post(
        _url(ActionItem, "changelist"),
        {"action": "delete_selected", "_selected_action": [i.pk for i in items], "post": "yes"},
    )
    assert response.status_code == 302
    assert not ActionItem.objects.exists()
    entries = AuditEntry.objects.filter(seq__gt=mark).order_by("seq")
    assert [(e.action, e.object_type, e.object_id) for e in entries] == [
        ("delete", "analytics.actionitem", str(i.pk)) for i in items
    ]


@pytest.mark.django_db
def test_rejected_admin_form_stores_nothing(users: dict, sample: dict) -> None:
    mark = AuditEntry.objects.count()
    response = _client(users["approver"]).post(_url(DRPlan, "add"), _plan_form(rto_seconds="-5"))
    assert response.status_code == 200
    assert "rto_seconds" in response.context["adminform"].form.errors
    assert not DRPlan.objects.filter(plan_id="core-dr").exists()
    assert AuditEntry.objects.count() == mark


@pytest.mark.django_db
def test_user_admin_never_logs_the_password_hash(users: dict) -> None:
    client = _client(users["admin"])
    viewer = users["viewer"]
    mark = AuditEntry.objects.count()
    response = client.post(
        reverse("admin:auth_user_password_change", args=[viewer.pk]),
        {"password1": "another-long-secret-1", "password2": "another-long-secret-1", "usable_password": "true"},
    )
    assert response.status_code == 302
    viewer.refresh_from_db()
    entry = AuditEntry.objects.filter(seq__gt=mark).get()
    assert (entry.action, entry.object_type, entry.comment) == ("update", "auth.user", "password changed via admin")
    assert entry.after["password"] == "***"
    assert viewer.password not in str(entry.before) + str(entry.after)


@pytest.mark.django_db
def test_dependency_cycle_is_refused_in_admin(users: dict, sample: dict) -> None:
    client = _client(users["approver"])
    db, web = Application.objects.get(slug="db"), Application.objects.get(slug="web")  # web already needs db
    mark = AuditEntry.objects.count()
    data = {
        "slug": "db",
        "name": "Database",
        "tier": "1",
        "owner": "",
        "owner_email": "",
        "description": "",
        "site": str(db.site_id),
        "dependency_links-TOTAL_FORMS": "1",
        "dependency_links-INITIAL_FORMS": "0",
        "dependency_links-MIN_NUM_FORMS": "0",
        "dependency_links-MAX_NUM_FORMS": "1000",
        "dependency_links-0-depends_on": str(web.pk),
    }
    response = client.post(_url(Application, "change", db.pk), data)
    assert response.status_code == 200
    assert "This would create a dependency cycle: db → web → db." in response.content.decode()
    assert not db.dependency_links.exists()
    assert AuditEntry.objects.count() == mark

    response = client.post(_url(ApplicationDependency, "add"), {"application": db.pk, "depends_on": web.pk})
    assert response.status_code == 200
    assert "This would create a dependency cycle: db → web → db." in response.content.decode()
    assert ApplicationDependency.objects.count() == 1


@pytest.mark.django_db
def test_plan_dr_site_must_differ_from_primary(users: dict, sample: dict) -> None:
    site = sample["plan"].primary_site
    response = _client(users["approver"]).post(
        _url(DRPlan, "add"), _plan_form(primary_site=str(site.pk), dr_site=str(site.pk))
    )
    assert response.status_code == 200
    assert "dr_site" in response.context["adminform"].form.errors
    assert not DRPlan.objects.filter(plan_id="core-dr").exists()
