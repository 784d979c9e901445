"""Core API routes. `router` is mounted with every app's router by drplan/urls.py;
`urlpatterns` holds the routes that are not viewsets."""

from django.urls import re_path

from core.api.routers import ApiRouter
from core.api.views import AuditEntryViewSet, ClockHealthView, HealthView, SecretViewSet

router = ApiRouter()
router.register("audit-log", AuditEntryViewSet, basename="audit-log")
router.register("secrets", SecretViewSet, basename="secret")

urlpatterns = [
    re_path(r"^health/?$", HealthView.as_view(), name="health"),
    re_path(r"^health/clocks/?$", ClockHealthView.as_view(), name="health-clocks"),
]
