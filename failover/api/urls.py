from rest_framework.routers import DefaultRouter

from failover.api import views

router = DefaultRouter()
router.trailing_slash = "/?"  # optional slash; DRF 3.16 turns any truthy trailing_slash argument into "/"
router.register("executions", views.FailoverExecutionViewSet, basename="execution")

urlpatterns = router.urls
