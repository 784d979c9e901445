from rest_framework.routers import DefaultRouter

from plans.api import views

router = DefaultRouter()
router.trailing_slash = "/?"  # optional slash; DRF 3.16 turns any truthy trailing_slash argument into "/"
router.register("sites", views.SiteViewSet, basename="site")
router.register("applications", views.ApplicationViewSet, basename="application")
router.register("plans", views.DRPlanViewSet, basename="plan")
router.register("recovery-strategies", views.RecoveryStrategyViewSet, basename="recovery-strategy")

urlpatterns = router.urls
