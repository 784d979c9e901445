"""This app's API routes; drplan/urls.py mounts every app's router (and `urlpatterns`) under /api/v1/dr/."""

from django.urls import re_path

from analytics.api import views
from core.api.routers import ApiRouter

router = ApiRouter()
router.register("rto-targets", views.RTOTargetViewSet, basename="rto-target")
router.register("test-results", views.DRTestResultViewSet, basename="test-result")
router.register("impact-analyses", views.ImpactAnalysisViewSet, basename="impact-analysis")

urlpatterns = [
    re_path(r"^test/compliance/?$", views.TestComplianceView.as_view(), name="test-compliance"),
]
