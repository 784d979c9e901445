from django.contrib import admin
from django.urls import include, path
from django.views.generic import TemplateView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.authtoken.views import obtain_auth_token

from core.api.errors import json_404, json_500

api_v1 = [
    path("", include("plans.api.urls")),
    path("", include("runbooks.api.urls")),
    path("", include("failover.api.urls")),
    path("", include("analytics.api.urls")),
    path("", include("compliance.api.urls")),
    path("", include("core.api.urls")),
    path("auth/token", obtain_auth_token, name="obtain-token"),
]

urlpatterns = [
    path("", TemplateView.as_view(template_name="home.html"), name="home"),
    path("admin/", admin.site.urls),
    path("api/v1/dr/", include(api_v1)),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("api-auth/", include("rest_framework.urls")),
]

handler404 = json_404
handler500 = json_500
