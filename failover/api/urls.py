"""This app's API routes; drplan/urls.py mounts every app's router under /api/v1/dr/."""

from core.api.routers import ApiRouter
from failover.api import views

router = ApiRouter()
router.register("executions", views.FailoverExecutionViewSet, basename="execution")
