"""This app's API routes; drplan/urls.py mounts every app's router under /api/v1/dr/."""

from core.api.routers import ApiRouter
from plans.api import views

router = ApiRouter()
router.register("sites", views.SiteViewSet, basename="site")
router.register("applications", views.ApplicationViewSet, basename="application")
router.register("plans", views.DRPlanViewSet, basename="plan")
router.register("recovery-strategies", views.RecoveryStrategyViewSet, basename="recovery-strategy")
