"""The what-if page (/what-if/): a DR manager picks what is lost (a site or applications) and when, and sees
what goes down, when it comes back (a timeline chart and a table), what it costs over time, and the same
under every strategy side by side. A plain GET form: the query string is the scenario, so a result can be
bookmarked and shared. Computed by the API's use case (analytics.impact.services), validated by its serializer."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET
from rest_framework.exceptions import ValidationError

from analytics.impact import services
from analytics.impact.api.serializers import ScenarioRequestSerializer
from analytics.impact.api.views import VIEW
from core.exceptions import InvalidInput
from plans.models import Application, DRPlan, Site


def _query(request: HttpRequest) -> dict[str, Any]:
    """The form's fields as the API's body: only what was filled in, the site or the applications by `lose`."""
    data: dict[str, Any] = {}
    lose = request.GET.get("lose", "site")
    if lose == "site" and request.GET.get("site"):
        data["site"] = request.GET["site"]
    if lose == "applications":
        data["applications"] = request.GET.getlist("applications")
    for key in ("plan", "at"):
        if request.GET.get(key):
            data[key] = request.GET[key]
    return data


def _errors(detail: Any) -> list[str]:
    if isinstance(detail, dict):
        return [
            f"{field}: {' '.join(str(m) for m in (msgs if isinstance(msgs, list) else [msgs]))}"
            for field, msgs in detail.items()
        ]
    return [str(detail)]


@require_GET
@login_required
def what_if(request: HttpRequest) -> HttpResponse:
    if not request.user.has_perms(VIEW):
        raise PermissionDenied("You need to be able to read impact analyses and business processes.")
    context: dict[str, Any] = {
        "sites": list(Site.objects.order_by("code")),
        "applications": list(Application.objects.order_by("slug")),
        "plans": list(DRPlan.objects.order_by("plan_id")),
        "form": {
            "lose": request.GET.get("lose", "site"),
            "site": request.GET.get("site", ""),
            "applications": request.GET.getlist("applications"),
            "plan": request.GET.get("plan", ""),
            "at": request.GET.get("at") or timezone.localtime().strftime("%Y-%m-%dT%H:%M"),
        },
        "result": None,
        "errors": [],
        "time_zone": settings.TIME_ZONE,
    }
    status = 200
    if "run" in request.GET:
        serializer = ScenarioRequestSerializer(data=_query(request))
        try:
            serializer.is_valid(raise_exception=True)
            data = serializer.validated_data
            scenario = services.build_scenario(
                site=data.get("site"), applications=data.get("applications"), plan=data.get("plan"), at=data.get("at")
            )
            context["result"] = services.what_if(scenario)
        except ValidationError as exc:
            context["errors"], status = _errors(exc.detail), 400
        except InvalidInput as exc:
            context["errors"], status = [f"{exc.field}: {exc.message}" if exc.field else exc.message], 400
    if context["result"]:
        result = context["result"]
        current = {
            "strategy": "as_planned",
            "label": "As planned (each plan's own strategy)",
            "current": True,
            "recovery_p50_seconds": result["recovery_p50_seconds"],
            "recovery_p90_seconds": result["recovery_p90_seconds"],
            "cost_p50": result["cost"]["p50"],
            "cost_p90": result["cost"]["p90"],
            "dr_cost_monthly": result["dr_cost_monthly"],
        }
        context["strategy_rows"] = [current, *result["strategies"]]
    return render(request, "analytics/what_if.html", context, status=status)
