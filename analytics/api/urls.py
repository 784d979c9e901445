from rest_framework.routers import DefaultRouter

from analytics.api import views

router = DefaultRouter()
router.trailing_slash = "/?"  # optional slash; DRF 3.16 turns any truthy trailing_slash argument into "/"
router.register("rto-targets", views.RTOTargetViewSet, basename="rto-target")
router.register("test-results", views.DRTestResultViewSet, basename="test-result")
router.register("impact-analyses", views.ImpactAnalysisViewSet, basename="impact-analysis")

urlpatterns = router.urls
