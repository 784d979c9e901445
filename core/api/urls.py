from django.urls import re_path
from rest_framework.routers import DefaultRouter

from core.api.views import HealthView

router = DefaultRouter(trailing_slash="/?")

urlpatterns = [re_path(r"^health/?$", HealthView.as_view(), name="health"), *router.urls]
