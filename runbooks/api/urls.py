from rest_framework.routers import DefaultRouter

from runbooks.api import views

router = DefaultRouter(trailing_slash="/?")
router.register("runbooks", views.RunbookViewSet, basename="runbook")

urlpatterns = router.urls
