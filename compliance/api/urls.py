"""This app's API routes; drplan/urls.py mounts every app's router under /api/v1/dr/."""

from compliance.api import views
from core.api.routers import ApiRouter

router = ApiRouter()
router.register("compliance-reports", views.ComplianceReportViewSet, basename="compliance-report")
