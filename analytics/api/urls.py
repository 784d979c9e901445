"""This app's API routes; drplan/urls.py mounts every app's router (and `urlpatterns`) under /api/v1/dr/."""

from django.urls import re_path

from analytics.api import views
from analytics.monitoring.api import views as monitoring
from core.api.routers import ApiRouter

router = ApiRouter()
router.register("rto-targets", views.RTOTargetViewSet, basename="rto-target")
router.register("test-results", views.DRTestResultViewSet, basename="test-result")
router.register("impact-analyses", views.ImpactAnalysisViewSet, basename="impact-analysis")
router.register("monitors", monitoring.MonitorViewSet, basename="monitor")
router.register("rto-rpo/violations", monitoring.ViolationViewSet, basename="sla-violation")

urlpatterns = [
    re_path(r"^test/compliance/?$", views.TestComplianceView.as_view(), name="test-compliance"),
    re_path(r"^rto-rpo/?$", monitoring.RTORPOView.as_view(), name="rto-rpo"),
    re_path(r"^rto-rpo/history/?$", monitoring.HistoryView.as_view(), name="rto-rpo-history"),
]
