"""Pages of the failover app beyond the console and dashboard: the plan operations' confirmation and
start (/plans/<plan_id>/run/<operation>/), the executions list, the approvals inbox and the DR test
schedules. Views read the request and call failover.web.operations / selectors and the domain services;
a refused request shows the service's reason with its 4xx status, never a 500."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from core.choices import AuthMethod
from core.exceptions import DomainError, InvalidInput
from core.lookups import find, parse_id
from failover import approvals, services
from failover import schedules as schedule_services
from failover.choices import ExecutionStatus, ExecutionType
from failover.common import APPROVE_EXECUTION, RUN_TEST
from failover.console import can_view, execution_approvals_for
from failover.models import FailoverExecution
from failover.services import FREQUENCIES
from failover.web import operations, selectors
from plans.choices import PlanStatus
from plans.models import DRPlan
from runbooks import services as runbook_services
from runbooks.choices import Decision
from runbooks.models import RunbookVersion
from runbooks.selectors import APPROVE_RUNBOOK, runbook_approvals_for

VIEW_PLAN = "plans.view_drplan"
MAX_REASON = 2000


def _fields(request: HttpRequest, names: tuple[str, ...]) -> dict[str, str]:
    """The named form fields as text; a NUL character (which no database stores) or a field longer than
    MAX_REASON is InvalidInput naming the field, before anything reaches a query."""
    values = {}
    for name in names:
        value = request.POST.get(name, "")
        if "\x00" in value:
            raise InvalidInput(f"{name} contains a NUL character", field=name)
        if len(value) > MAX_REASON:
            raise InvalidInput(f"{name} is longer than {MAX_REASON} characters", field=name)
        values[name] = value
    return values


def _plan(request: HttpRequest, plan_id: str) -> DRPlan:
    if not request.user.has_perm(VIEW_PLAN):
        raise DjangoPermissionDenied(f"You need the {VIEW_PLAN} permission to see plans.")
    plan = find(DRPlan.objects.all(), plan_id, "plan_id") if selectors.PLAN_ID.fullmatch(plan_id) else None
    if plan is None:
        raise Http404(f"No plan {plan_id!r}.")
    return plan


def _parse_declared_at(raw: str) -> datetime | None:
    """A datetime-local value ("2026-12-02T08:15") in the server's time zone; empty means now."""
    raw = (raw or "").strip()
    if not raw:
        return None
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise InvalidInput(f"{raw!r} is not a date and time (YYYY-MM-DD HH:MM)", field="disaster_declared_at") from None
    if timezone.is_naive(value):
        value = timezone.make_aware(value, timezone.get_current_timezone())
    return value


@login_required
@require_http_methods(["GET", "POST"])
def operation(request: HttpRequest, plan_id: str, key: str) -> HttpResponse:
    op = operations.get_operation(key)
    if op is None:
        raise Http404(f"No operation {key!r}.")
    plan = _plan(request, plan_id)
    context: dict[str, Any] = {"plan": plan, "op": op, "form": {}, "error": "", "results": None}
    context["allowed"] = request.user.has_perm(op.permission)
    status = 200
    if request.method == "POST":
        context["form"] = form = {}
        try:
            form.update(_fields(request, ("token", "confirm_plan_id", "reason", "declared_at")))
            if not op.starts_execution:
                context["results"] = operations.validate(plan, request.user)
            else:
                return _start(request, op, plan, form)
        except DomainError as exc:
            context["error"] = exc.message
            status = exc.status_code
    context["preview"] = operations.preview(op, plan, request.user)
    context["token"] = context["form"].get("token") or operations.new_token()
    context["now_local"] = timezone.localtime().strftime("%Y-%m-%dT%H:%M")
    return render(request, "failover/web/operation.html", context, status=status)


def _start(request: HttpRequest, op: operations.Operation, plan: DRPlan, form: dict[str, str]) -> HttpResponse:
    if op.confirm_id and form["confirm_plan_id"].strip() != plan.plan_id:
        raise InvalidInput(
            f"To confirm, type the plan's id exactly: {plan.plan_id}. Nothing was started.", field="confirm_plan_id"
        )
    declared_at = _parse_declared_at(form["declared_at"]) if op.key == "unplanned" else None
    if op.key == "unplanned" and declared_at is None:
        declared_at = timezone.now()
    earlier = operations.claim_token(form["token"])
    if earlier is not None:
        return redirect("execution-console", pk=earlier)
    try:
        execution = operations.start(op, plan, request.user, reason=form["reason"], disaster_declared_at=declared_at)
    except BaseException:
        operations.settle_token(form["token"], None)
        raise
    operations.settle_token(form["token"], execution)
    return redirect("execution-console", pk=execution.pk)


# --- Executions -----------------------------------------------------------------------------

PAGE_SIZE = 50


@login_required
@require_GET
def execution_list(request: HttpRequest) -> HttpResponse:
    if not can_view(request.user):
        raise DjangoPermissionDenied("You need the failover.view_failoverexecution permission to see executions.")
    error, status = "", 200
    try:
        filters = selectors.ExecutionFilters.from_query(request.GET)
    except InvalidInput as exc:
        error, status, filters = exc.message, exc.status_code, selectors.ExecutionFilters()
    page = Paginator(selectors.executions(filters), PAGE_SIZE).get_page(request.GET.get("page"))
    query = {k: v for k, v in vars(filters).items() if v}
    context = {
        "page": page,
        "filters": filters,
        "error": error,
        "query": urlencode(query),
        "plans": DRPlan.objects.order_by("plan_id").values_list("plan_id", "name"),
        "types": ExecutionType.choices,
        "statuses": ExecutionStatus.choices,
        "periods": [(key, label) for key, (label, _) in selectors.PERIODS.items()],
    }
    return render(request, "failover/web/executions.html", context, status=status)


# --- Approvals inbox --------------------------------------------------------------------------


def _inbox(request: HttpRequest, error: str = "", status: int = 200) -> HttpResponse:
    context = {
        "execution_approvals": execution_approvals_for(request.user),
        "runbook_approvals": runbook_approvals_for(request.user),
        "may_approve": request.user.has_perm(APPROVE_EXECUTION) or request.user.has_perm(APPROVE_RUNBOOK),
        "error": error,
    }
    return render(request, "failover/web/approvals.html", context, status=status)


@login_required
@require_GET
def approvals_inbox(request: HttpRequest) -> HttpResponse:
    return _inbox(request)


def _decision(request: HttpRequest) -> tuple[str, str]:
    fields = _fields(request, ("decision", "comment"))
    if fields["decision"] not in Decision.values:
        raise InvalidInput(f"decision must be one of {', '.join(Decision.values)}", field="decision")
    return fields["decision"], fields["comment"]


@login_required
@require_POST
def decide_execution(request: HttpRequest, pk: int) -> HttpResponse:
    """Go/no-go from the inbox: failover.approvals.decide_execution, as POST /executions/{id}/approve|reject."""
    execution = FailoverExecution.objects.filter(pk=pk).first() if parse_id(pk) else None
    if execution is None:
        raise Http404(f"No execution #{pk}.")
    try:
        decision, comment = _decision(request)
        approvals.decide_execution(execution, request.user, decision, comment, auth_method=AuthMethod.SESSION)
    except DomainError as exc:
        return _inbox(request, f"Execution #{pk}: {exc.message}", exc.status_code)
    verb = "approved" if decision == Decision.APPROVE else "rejected"
    messages.success(request, f"You {verb} execution #{pk}.")
    return redirect("approvals")


@login_required
@require_POST
def decide_runbook_version(request: HttpRequest, pk: int) -> HttpResponse:
    """A runbook version's approval from the inbox: runbooks.services.decide, as the API's approve/reject."""
    version = RunbookVersion.objects.filter(pk=pk).select_related("runbook").first() if parse_id(pk) else None
    if version is None:
        raise Http404(f"No runbook version #{pk}.")
    try:
        decision, comment = _decision(request)
        runbook_services.decide(version, request.user, decision, comment, auth_method=AuthMethod.SESSION)
    except DomainError as exc:
        return _inbox(request, f"{version}: {exc.message}", exc.status_code)
    verb = "approved" if decision == Decision.APPROVE else "rejected"
    messages.success(request, f"You {verb} {version}.")
    return redirect("approvals")


# --- Schedules ----------------------------------------------------------------------------------


def _schedules_page(request: HttpRequest, error: str = "", status: int = 200, form: dict | None = None) -> HttpResponse:
    context = {
        "rows": selectors.schedules(),
        "may_schedule": request.user.has_perm(RUN_TEST),
        "plans": DRPlan.objects.filter(status=PlanStatus.ACTIVE).order_by("plan_id").values_list("plan_id", "name"),
        "frequencies": list(FREQUENCIES),
        "error": error,
        "form": form or {},
    }
    return render(request, "failover/web/schedules.html", context, status=status)


@login_required
@require_http_methods(["GET", "POST"])
def schedules(request: HttpRequest) -> HttpResponse:
    """GET: the recurring DR tests. POST: create or replace a plan's (failover.services.schedule_test)."""
    if not request.user.has_perm(VIEW_PLAN):
        raise DjangoPermissionDenied(f"You need the {VIEW_PLAN} permission to see schedules.")
    if request.method == "GET":
        return _schedules_page(request)
    form: dict[str, str] = {}
    try:
        form.update({k: v.strip() for k, v in _fields(request, ("plan", "kind", "frequency", "cron")).items()})
        plan = DRPlan.objects.filter(plan_id=form["plan"]).first()
        if plan is None:
            raise InvalidInput(f"no plan {form['plan']!r}", field="plan")
        if form["kind"] not in ("frequency", "cron"):
            raise InvalidInput("choose a frequency or a cron expression", field="kind")
        services.schedule_test(
            plan,
            cron=form["cron"] if form["kind"] == "cron" else None,
            frequency=form["frequency"] if form["kind"] == "frequency" else None,
            actor=request.user,
            auth_method=AuthMethod.SESSION,
        )
    except DomainError as exc:
        return _schedules_page(request, exc.message, exc.status_code, form)
    messages.success(request, f"DR tests of {plan.plan_id} are scheduled.")
    return redirect("schedules")


@login_required
@require_POST
def schedule_action(request: HttpRequest, plan_id: str, action: str) -> HttpResponse:
    """Pause, resume or delete a plan's DR test schedule (failover.schedules)."""
    plan = _plan(request, plan_id)
    try:
        if action == "pause":
            schedule_services.set_schedule_paused(plan, True, actor=request.user, auth_method=AuthMethod.SESSION)
        elif action == "resume":
            schedule_services.set_schedule_paused(plan, False, actor=request.user, auth_method=AuthMethod.SESSION)
        elif action == "delete":
            schedule_services.delete_schedule(plan, actor=request.user, auth_method=AuthMethod.SESSION)
        else:
            raise InvalidInput("action must be pause, resume or delete", field="action")
    except DomainError as exc:
        return _schedules_page(request, f"{plan.plan_id}: {exc.message}", exc.status_code)
    done = {"pause": "paused", "resume": "resumed", "delete": "deleted"}[action]
    messages.success(request, f"The DR test schedule of {plan.plan_id} is {done}.")
    return redirect("schedules")
