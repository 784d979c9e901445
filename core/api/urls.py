from django.urls import path
from rest_framework.routers import DefaultRouter

from core.api.views import HealthView

router = DefaultRouter(trailing_slash="/?")

urlpatterns = [path("health", HealthView.as_view(), name="health"), *router.urls]
