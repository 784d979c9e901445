from rest_framework.routers import DefaultRouter

from compliance.api import views

router = DefaultRouter()
router.trailing_slash = "/?"  # optional slash; DRF 3.16 turns any truthy trailing_slash argument into "/"
router.register("compliance-reports", views.ComplianceReportViewSet, basename="compliance-report")

urlpatterns = router.urls
