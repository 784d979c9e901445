"""URLs of the ML service (port 8045): its endpoints and its own OpenAPI schema at /schema/."""

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import path
from drf_spectacular.views import SpectacularAPIView

from core.api.errors import error_body
from mlservice.api import views

SCHEMA_SETTINGS = {
    "TITLE": "DRPlan ML service",
    "DESCRIPTION": (
        "RTO prediction, recovery-time simulation, drive failure risk and impact scoring, on 127.0.0.1:8045. "
        'Every error is `{"error": {"code", "message", "fields"}}` naming the field.'
    ),
    "VERSION": "1.0.0",
}

urlpatterns = [
    path("predict-rto", views.PredictRTOView.as_view(), name="ml-predict-rto"),
    path("estimate-recovery-time", views.EstimateRecoveryTimeView.as_view(), name="ml-estimate-recovery-time"),
    path("analyze-failure-risk", views.AnalyzeFailureRiskView.as_view(), name="ml-analyze-failure-risk"),
    path("score-impact", views.ScoreImpactView.as_view(), name="ml-score-impact"),
    path("models", views.ModelsView.as_view(), name="ml-models"),
    path("health", views.HealthView.as_view(), name="ml-health"),
    path(
        "schema/",
        SpectacularAPIView.as_view(urlconf="drplan.ml_urls", custom_settings=SCHEMA_SETTINGS),
        name="ml-schema",
    ),
]


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return JsonResponse(error_body("not_found", f"No endpoint at {request.path}."), status=404)


def server_error(request: HttpRequest) -> HttpResponse:
    return JsonResponse(error_body("server_error", "Internal error; it has been logged."), status=500)


handler404 = not_found
handler500 = server_error
