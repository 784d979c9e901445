"""Failover API: executions and their evidence (read-only), and the endpoints that start and control them.

Views validate input and call the use cases (failover.services, failover.approvals, failover.controls);
those check the rules (and, for the type-dependent permissions of cancel/resume/retry, the permission) and audit.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db import models
from django.http import Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import BaseSerializer
from rest_framework.views import APIView

from core import audit
from core.api.pagination import PAGINATION_PARAMETERS, StandardPagination
from core.api.permissions import MethodPermissions
from core.api.viewsets import ReadOnlyModelViewSet
from core.lookups import find, lookup_kwargs, parse_id
from failover import approvals, controls, selectors, services
from failover.api.serializers import (
    CancelRequestSerializer,
    DecisionCommentSerializer,
    ExecutionCancelRequestSerializer,
    ExecutionEventSerializer,
    ExecutionStatusSerializer,
    FailoverExecutionDetailSerializer,
    FailoverExecutionSerializer,
    FailoverRequestSerializer,
    PlanRefSerializer,
    PlanRunRequestSerializer,
    ReadinessSerializer,
    RejectionCommentSerializer,
    RunbookExecuteRequestSerializer,
    ScheduleRequestSerializer,
    ScheduleSerializer,
    StepRunDetailSerializer,
    TestExecutionSerializer,
    VerificationCommentSerializer,
)
from failover.choices import ExecutionType
from failover.filtersets import FailoverExecutionFilterSet
from failover.models import FailoverExecution, StepRun
from plans.api.auditing import SLUG_OR_ID
from plans.models import DRPlan
from runbooks import selectors as runbook_selectors
from runbooks.choices import Decision
from runbooks.models import Runbook, RunbookVersion

VIEW = "failover.view_failoverexecution"
STEP_KEY = OpenApiParameter(
    "step_key", OpenApiTypes.STR, OpenApiParameter.PATH, description="e.g. orders-db.promote", pattern=r"^[^/]+$"
)


def execution_response(execution: FailoverExecution, code: int = status.HTTP_200_OK) -> Response:
    fresh = selectors.execution_full().get(pk=execution.pk)
    return Response(FailoverExecutionDetailSerializer(fresh).data, status=code)


def _body(request: Request) -> dict[str, Any]:
    """The request's JSON object (empty without a body); any other JSON value is 400."""
    if not isinstance(request.data, dict):
        raise ValidationError({"non_field_errors": ["Expected a JSON object."]})
    return request.data


def _step_action(
    name: str,
    verb: str,
    summary: str,
    call: Callable[..., StepRun],
    request: type[BaseSerializer] = DecisionCommentSerializer,
) -> Callable[..., Response]:
    """A POST /executions/{id}/steps/{step_key}/<verb> action: read the comment, call the
    service with (execution, step_key, user, comment, auth_method), answer with the step."""

    def view(self: Any, request: Request, pk: str, step_key: str) -> Response:
        data = self._input(request)
        step = call(self._execution(), step_key, request.user, data["comment"], audit.auth_method_of(request))
        step.refresh_from_db()
        return Response(StepRunDetailSerializer(step).data)

    view.__name__ = view.__qualname__ = name  # DRF wants it to match the class attribute
    decorated = action(detail=True, methods=["post"], url_path=rf"steps/(?P<step_key>[^/]+)/{verb}", filter_backends=[])
    schema = extend_schema(
        summary=summary,
        parameters=[STEP_KEY],
        request=request,
        responses=StepRunDetailSerializer,
    )
    return schema(decorated(view))


class FailoverExecutionViewSet(ReadOnlyModelViewSet):
    """Failovers, failbacks, DR tests and runbook runs. The list is a summary; the detail adds
    step runs and validation results."""

    filterset_class = FailoverExecutionFilterSet
    search_fields = ["trigger_reason", "plan__plan_id", "runbook_version__runbook__slug"]
    ordering_fields = ["triggered_at", "started_at", "finished_at", "status", "actual_rto_seconds"]
    ordering = ["-triggered_at", "-id"]

    def get_queryset(self) -> models.QuerySet:
        if self.action == "retrieve":
            return selectors.execution_detail()
        return selectors.execution_list()

    # Approvals need approve_execution; confirming confirm_step. Cancel/resume/retry/mark-done need
    # run_failover or run_test depending on the execution's type: the service checks that one.
    action_permissions = {
        "approve": ["failover.approve_execution"],
        "reject": ["failover.approve_execution"],
        "approve_step": ["failover.approve_execution"],
        "reject_step": ["failover.approve_execution"],
        "confirm_step": ["failover.confirm_step"],
        "cancel": [VIEW],
        "resume": [VIEW],
        "retry_step": [VIEW],
        "mark_step_done": [VIEW],
    }

    def get_serializer_class(self) -> type[BaseSerializer]:
        if self.action == "retrieve":
            return FailoverExecutionDetailSerializer
        if self.action == "events":
            return ExecutionEventSerializer
        if self.action in {"reject", "reject_step"}:
            return RejectionCommentSerializer
        if self.action == "mark_step_done":
            return VerificationCommentSerializer
        if self.action in {"approve", "resume", "approve_step", "confirm_step", "retry_step"}:
            return DecisionCommentSerializer
        if self.action == "cancel":
            return ExecutionCancelRequestSerializer
        return FailoverExecutionSerializer

    def _execution(self) -> FailoverExecution:
        execution_id = parse_id(self.kwargs["pk"])
        execution = FailoverExecution.objects.filter(pk=execution_id).first() if execution_id else None
        if execution is None:
            raise Http404
        return execution

    def _input(self, request: Request) -> dict[str, Any]:
        serializer = self.get_serializer(data=_body(request))
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data

    def _decide(self, request: Request, decision: str) -> Response:
        data = self._input(request)
        execution = self._execution()
        approvals.decide_execution(
            execution, request.user, decision, data["comment"], auth_method=audit.auth_method_of(request)
        )
        return execution_response(execution)

    @extend_schema(
        summary="Approve the current approval level of an execution awaiting approval",
        request=DecisionCommentSerializer,
        responses=FailoverExecutionDetailSerializer,
    )
    @action(detail=True, methods=["post"], filter_backends=[])
    def approve(self, request: Request, pk: str) -> Response:
        return self._decide(request, Decision.APPROVE)

    @extend_schema(
        summary="Reject an execution awaiting approval (a comment is required); it ends REJECTED",
        request=RejectionCommentSerializer,
        responses=FailoverExecutionDetailSerializer,
    )
    @action(detail=True, methods=["post"], filter_backends=[])
    def reject(self, request: Request, pk: str) -> Response:
        return self._decide(request, Decision.REJECT)

    @extend_schema(
        summary="Cancel an active execution, optionally rolling back what it did",
        request=ExecutionCancelRequestSerializer,
        responses=FailoverExecutionDetailSerializer,
    )
    @action(detail=True, methods=["post"], filter_backends=[])
    def cancel(self, request: Request, pk: str) -> Response:
        data = self._input(request)
        execution = self._execution()
        controls.cancel(
            execution,
            request.user,
            data["rollback"],
            comment=data["comment"],
            auth_method=audit.auth_method_of(request),
        )
        return execution_response(execution)

    @extend_schema(
        summary="Resume a failed or paused execution from its failed steps (succeeded steps never re-run)",
        request=DecisionCommentSerializer,
        responses=FailoverExecutionDetailSerializer,
    )
    @action(detail=True, methods=["post"], filter_backends=[])
    def resume(self, request: Request, pk: str) -> Response:
        data = self._input(request)
        execution = self._execution()
        controls.resume(execution, request.user, comment=data["comment"], auth_method=audit.auth_method_of(request))
        return execution_response(execution)

    confirm_step = _step_action(
        "confirm_step",
        "confirm",
        "Confirm a manual step is done",
        lambda execution, key, user, comment, how: controls.confirm_step(
            execution, key, user, comment, auth_method=how
        ),
    )
    approve_step = _step_action(
        "approve_step",
        "approve",
        "Approve a step's approval gate",
        lambda execution, key, user, comment, how: approvals.decide_step(
            execution, key, user, Decision.APPROVE, comment, auth_method=how
        ),
    )
    reject_step = _step_action(
        "reject_step",
        "reject",
        "Reject a step's approval gate (a comment is required); the step fails",
        lambda execution, key, user, comment, how: approvals.decide_step(
            execution, key, user, Decision.REJECT, comment, auth_method=how
        ),
        request=RejectionCommentSerializer,
    )
    retry_step = _step_action(
        "retry_step",
        "retry",
        "Run a failed, lost or cancelled step again",
        lambda execution, key, user, comment, how: controls.retry_step(
            execution, key, user, comment=comment, auth_method=how
        ),
    )
    mark_step_done = _step_action(
        "mark_step_done",
        "mark-done",
        "Mark a lost step done after verifying it completed (a comment saying how is required)",
        lambda execution, key, user, comment, how: controls.mark_step_done(
            execution, key, user, comment, auth_method=how
        ),
        request=VerificationCommentSerializer,
    )

    @extend_schema(
        summary="Events of an execution",
        description="Events with seq greater than `after`, in order (paginated): backfill after a reconnect.",
        parameters=[
            OpenApiParameter(
                "after", {"type": "integer", "minimum": 0}, description="Last seq already seen (default 0)."
            ),
            *PAGINATION_PARAMETERS,
        ],
        responses=ExecutionEventSerializer(many=True),
    )
    @action(detail=True, methods=["get"], filter_backends=[])
    def events(self, request: Request, pk: str | None = None) -> Response:
        execution = self.get_object()
        raw = request.query_params.get("after", "0") or "0"
        try:
            after = int(raw)
        except ValueError:
            raise ValidationError({"after": [f"'{raw}' is not a sequence number."]}) from None
        if after < 0:
            raise ValidationError({"after": ["Must be 0 or greater."]})
        page = self.paginate_queryset(selectors.events_after(execution, after))
        return self.get_paginated_response(ExecutionEventSerializer(page, many=True).data)


# --- Plain endpoints under /api/v1/dr/ ----------------------------------------------------


class EngineView(APIView):
    permission_classes = [MethodPermissions]
    method_permissions: dict[str, list[str]] = {}

    def validated(self, request: Request, serializer_class: type[BaseSerializer]) -> dict[str, Any]:
        serializer = serializer_class(data=_body(request))
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data


def _run_kwargs(request: Request, data: dict[str, Any]) -> dict[str, Any]:
    return {
        "actor": request.user,
        "auth_method": audit.auth_method_of(request),
        "reason": data["reason"],
        "parameters": data["parameters"],
        "dry_run": data["dry_run"],
        "parallelism": data["parallelism"],
        "trigger_type": "api",
    }


class FailoverView(EngineView):
    def check_permissions(self, request: Request) -> None:
        # A test needs run_test, a failover run_failover: decided by the body's type, before validating it.
        wanted = _body(request).get("type")
        self.method_permissions = {"POST": [services.RUN_TEST if wanted == "test" else services.RUN_FAILOVER]}
        super().check_permissions(request)

    @extend_schema(
        summary="Start a failover of a plan (type planned/unplanned), or a DR test (type test)",
        description="Planned/unplanned need failover.run_failover, test failover.run_test. With approval levels "
        "on the plan the execution waits in awaiting_approval. One active failover/failback per plan: 409.",
        request=FailoverRequestSerializer,
        responses={201: FailoverExecutionDetailSerializer},
    )
    def post(self, request: Request) -> Response:
        data = self.validated(request, FailoverRequestSerializer)
        kwargs = _run_kwargs(request, data)
        if data["type"] == ExecutionType.TEST:
            execution = services.start_test(data["plan"], **kwargs)
        else:
            execution = services.start_failover(
                data["plan"], execution_type=data["type"], disaster_declared_at=data["disaster_declared_at"], **kwargs
            )
        return execution_response(execution, status.HTTP_201_CREATED)


class FailbackView(EngineView):
    method_permissions = {"POST": [services.RUN_FAILOVER]}

    @extend_schema(
        summary="Start a failback of a plan (its failback runbooks)",
        request=PlanRunRequestSerializer,
        responses={201: FailoverExecutionDetailSerializer},
    )
    def post(self, request: Request) -> Response:
        data = self.validated(request, PlanRunRequestSerializer)
        execution = services.start_failback(data["plan"], **_run_kwargs(request, data))
        return execution_response(execution, status.HTTP_201_CREATED)


class TestView(EngineView):
    method_permissions = {"POST": [services.RUN_TEST]}

    @extend_schema(
        summary="Start a non-disruptive DR test of a plan (its test runbooks)",
        request=PlanRunRequestSerializer,
        responses={201: FailoverExecutionDetailSerializer},
    )
    def post(self, request: Request) -> Response:
        data = self.validated(request, PlanRunRequestSerializer)
        execution = services.start_test(data["plan"], **_run_kwargs(request, data))
        return execution_response(execution, status.HTTP_201_CREATED)


class FailoverStatusView(EngineView):
    method_permissions = {"GET": [VIEW]}

    @extend_schema(
        summary="Active executions with their steps, or one execution by id",
        parameters=[
            OpenApiParameter("id", {"type": "integer", "minimum": 1}, description="One execution, whatever its status.")
        ],
        responses={200: ExecutionStatusSerializer, 404: OpenApiResponse(description="No execution with that `id`.")},
    )
    def get(self, request: Request) -> Response:
        raw = request.query_params.get("id")
        if raw:  # an empty parameter is the same as none
            execution_id = parse_id(raw)
            if execution_id is None:
                raise ValidationError({"id": [f"'{raw}' is not an execution id."]})
            executions = list(selectors.execution_full().filter(pk=execution_id))
            if not executions:
                raise Http404
        else:
            executions = list(selectors.active_executions())
        data = FailoverExecutionDetailSerializer(executions, many=True).data
        return Response({"count": len(executions), "executions": data})


class FailoverCancelView(EngineView):
    method_permissions = {"POST": [VIEW]}  # plus run_failover or run_test by type, checked by the service

    @extend_schema(
        summary="Cancel an active execution (optionally rolling back)",
        request=CancelRequestSerializer,
        responses=FailoverExecutionDetailSerializer,
    )
    def post(self, request: Request) -> Response:
        data = self.validated(request, CancelRequestSerializer)
        execution = FailoverExecution.objects.filter(pk=data["execution"]).first()
        if execution is None:
            raise ValidationError({"execution": [f"no execution #{data['execution']}"]})
        controls.cancel(
            execution,
            request.user,
            data["rollback"],
            comment=data["comment"],
            auth_method=audit.auth_method_of(request),
        )
        return execution_response(execution)


class FailoverValidateView(EngineView):
    method_permissions = {"POST": [services.RUN_FAILOVER]}

    @extend_schema(
        summary="Readiness of a plan to fail over: each check with pass/fail and why",
        description="plan_active, runbooks_approved, secrets_present, targets_reachable (TCP connect to the "
        "plan's connectivity targets), approvers_available (excluding the caller). Changes nothing.",
        request=PlanRefSerializer,
        responses=ReadinessSerializer,
    )
    def post(self, request: Request) -> Response:
        plan = self.validated(request, PlanRefSerializer)["plan"]
        checks = services.validate_readiness(plan, requester=request.user)
        return Response({"plan": plan.plan_id, "ready": all(c["passed"] for c in checks), "checks": checks})


class TestResultsView(EngineView):
    method_permissions = {"GET": [VIEW]}
    pagination_class = StandardPagination

    @extend_schema(
        summary="DR test executions with their recorded results, newest first",
        operation_id="dr_test_executions_list",
        parameters=[
            OpenApiParameter("plan", OpenApiTypes.STR, description="plan_id or numeric id"),
            *PAGINATION_PARAMETERS,
        ],
        responses={
            200: TestExecutionSerializer(many=True),
            404: OpenApiResponse(description="A page past the end (`not_found`)."),
        },
    )
    def get(self, request: Request) -> Response:
        queryset = selectors.dr_test_executions()
        wanted = request.query_params.get("plan")
        if wanted:
            plan = find(DRPlan.objects.all(), wanted, "plan_id")
            queryset = queryset.filter(plan=plan) if plan is not None else queryset.none()
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(queryset, request, view=self)
        return paginator.get_paginated_response(TestExecutionSerializer(page, many=True).data)


class TestScheduleView(EngineView):
    method_permissions = {"POST": [services.RUN_TEST]}

    @extend_schema(
        summary="Schedule a plan's DR test: a cron expression or a frequency (one schedule per plan)",
        request=ScheduleRequestSerializer,
        responses={201: ScheduleSerializer},
    )
    def post(self, request: Request) -> Response:
        data = self.validated(request, ScheduleRequestSerializer)
        schedule = services.schedule_test(
            data["plan"],
            cron=data["cron"],
            frequency=data["frequency"],
            actor=request.user,
            auth_method=audit.auth_method_of(request),
        )
        return Response(
            {
                "id": schedule.pk,
                "name": schedule.name,
                "func": schedule.func,
                "schedule_type": schedule.schedule_type,
                "cron": schedule.cron,
                "next_run": schedule.next_run,
            },
            status=status.HTTP_201_CREATED,
        )


# --- A runbook's runs: POST /runbooks/{id}/execute and GET /runbooks/{id}/history ------------------
# Runbook definitions (runbooks/) do not know executions; running one is an execution use case.

RUNBOOK_ID = OpenApiParameter(
    "id", OpenApiTypes.STR, OpenApiParameter.PATH, description="Numeric id or slug.", pattern=rf"^{SLUG_OR_ID}$"
)


def _runbook(value: str) -> Runbook:
    runbook = Runbook.objects.filter(**lookup_kwargs(value, "slug")).first()
    if runbook is None:
        raise Http404
    return runbook


class RunbookExecuteView(EngineView):
    method_permissions = {"POST": [services.RUN_TEST]}

    @extend_schema(
        tags=["v1"],
        operation_id="v1_dr_runbooks_execute_create",
        summary="Run a runbook version (default: the latest approved; a dry run may take any version)",
        description="Needs failover.run_test. A failover or failback runbook runs only through its plan "
        "(POST /failover, /failback), under the plan's go/no-go approvals; here only as a dry run.",
        parameters=[RUNBOOK_ID],
        request=RunbookExecuteRequestSerializer,
        responses={201: FailoverExecutionDetailSerializer},
    )
    def post(self, request: Request, pk: str) -> Response:
        data = self.validated(request, RunbookExecuteRequestSerializer)
        runbook = _runbook(pk)
        target: Runbook | RunbookVersion = runbook
        if data.get("version"):
            target = (
                runbook_selectors.version_detail_queryset().filter(runbook=runbook, version=data["version"]).first()
            )
            if target is None:
                raise Http404
        execution = services.execute_runbook(
            target,
            actor=request.user,
            auth_method=audit.auth_method_of(request),
            reason=data["reason"],
            parameters=data["parameters"],
            dry_run=data["dry_run"],
            parallelism=data["parallelism"],
            trigger_type="api",
        )
        return execution_response(execution, status.HTTP_201_CREATED)


class RunbookHistoryView(EngineView):
    method_permissions = {"GET": [VIEW]}
    pagination_class = StandardPagination

    @extend_schema(
        tags=["v1"],
        operation_id="v1_dr_runbooks_history_list",
        summary="Runs of this runbook (any version), newest first",
        description="Needs failover.view_failoverexecution.",
        parameters=[RUNBOOK_ID, *PAGINATION_PARAMETERS],
        responses=FailoverExecutionSerializer(many=True),
    )
    def get(self, request: Request, pk: str) -> Response:
        runbook = _runbook(pk)
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(selectors.runbook_history(runbook.pk), request, view=self)
        return paginator.get_paginated_response(FailoverExecutionSerializer(page, many=True).data)
