"""This app's API routes; drplan/urls.py mounts every app's router (and `urlpatterns`) under /api/v1/dr/."""

from django.urls import re_path

from analytics.api import views
from analytics.impact.api import views as impact_views
from analytics.monitoring.api import views as monitoring
from core.api.routers import ApiRouter

router = ApiRouter()
router.register("rto-targets", views.RTOTargetViewSet, basename="rto-target")
router.register("test-results", views.DRTestResultViewSet, basename="test-result")
router.register("impact-analyses", views.ImpactAnalysisViewSet, basename="impact-analysis")
router.register("business-processes", impact_views.BusinessProcessViewSet, basename="business-process")
router.register("monitors", monitoring.MonitorViewSet, basename="monitor")
router.register("rto-rpo/violations", monitoring.ViolationViewSet, basename="sla-violation")

urlpatterns = [
    re_path(r"^test/compliance/?$", views.TestComplianceView.as_view(), name="test-compliance"),
    # Business impact (analytics/impact): compute an analysis, read one with its working, what-if.
    re_path(r"^impact-analysis/?$", impact_views.ImpactAnalysisComputeView.as_view(), name="impact-analysis-compute"),
    re_path(r"^impact-analysis/scenario/?$", impact_views.ScenarioView.as_view(), name="impact-analysis-scenario"),
    re_path(
        r"^impact-analysis/(?P<pk>[0-9]{1,18})/?$",
        impact_views.ImpactAnalysisDetailView.as_view(),
        name="impact-analysis-computed",
    ),
    # Continuous monitoring (analytics/monitoring): the RTO/RPO picture and its history.
    re_path(r"^rto-rpo/?$", monitoring.RTORPOView.as_view(), name="rto-rpo"),
    re_path(r"^rto-rpo/history/?$", monitoring.HistoryView.as_view(), name="rto-rpo-history"),
]
