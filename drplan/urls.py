from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from analytics import views as analytics_views
from analytics.api.urls import router as analytics_router
from analytics.api.urls import urlpatterns as analytics_urlpatterns
from analytics.notifications.api.urls import router as notifications_router
from analytics.notifications.api.urls import urlpatterns as notifications_urlpatterns
from compliance.api.urls import router as compliance_router
from core.api.errors import json_404, json_500
from core.api.routers import api_root_router
from core.api.urls import router as core_router
from core.api.views import TokenView
from failover import views as failover_views
from failover.api.urls import router as failover_router
from failover.api.urls import urlpatterns as failover_urlpatterns
from plans.api.urls import router as plans_router
from runbooks.api.urls import router as runbooks_router
from runbooks.views import builder_edit, builder_new, template_catalogue, template_use

api_router = api_root_router(
    plans_router,
    runbooks_router,
    failover_router,
    analytics_router,
    notifications_router,
    compliance_router,
    core_router,
)

api_v1 = [
    path("", include("core.api.urls")),  # health
    *api_router.urls,
    *failover_urlpatterns,  # /failover, /failback, /test … (plain endpoints of the engine)
    *analytics_urlpatterns,  # /test/compliance
    *notifications_urlpatterns,  # POST /rto-rpo/alert
    path("auth/token", TokenView.as_view(), name="obtain-token"),
]

urlpatterns = [
    path("", analytics_views.home, name="home"),
    path("dashboard/", analytics_views.dashboard, name="dashboard"),
    path("console/executions/<int:pk>/", failover_views.console, name="execution-console"),
    path("console/executions/<int:pk>/state/", failover_views.console_state_json, name="execution-console-state"),
    path("", include("analytics.web.urls")),  # /plans/, /plans/<plan_id>/
    path("", include("failover.web.urls")),  # plan operations, executions, approvals, schedules
    path("admin/", admin.site.urls),
    path("builder/runbooks/new/", builder_new, name="runbook-builder-new"),
    path("builder/runbooks/<slug:slug>/", builder_edit, name="runbook-builder"),
    path("runbooks/templates/", template_catalogue, name="runbook-templates"),
    path("runbooks/templates/<slug:slug>/use/", template_use, name="runbook-template-use"),
    path("api/v1/dr/", include(api_v1)),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("api-auth/", include("rest_framework.urls")),
]

handler404 = json_404
handler500 = json_500
