from django.urls import re_path
from rest_framework.routers import DefaultRouter

from core.api.views import AuditEntryViewSet, HealthView

router = DefaultRouter()
router.trailing_slash = "/?"  # optional slash; DRF 3.16 turns any truthy trailing_slash argument into "/"
router.register("audit-log", AuditEntryViewSet, basename="audit-log")

urlpatterns = [re_path(r"^health/?$", HealthView.as_view(), name="health"), *router.urls]
