"""This app's API routes; drplan/urls.py mounts every app's router under /api/v1/dr/."""

from core.api.routers import ApiRouter
from runbooks.api import views
from runbooks.api.action_views import ActionViewSet
from runbooks.api.template_views import RunbookTemplateViewSet

router = ApiRouter()
router.register("runbooks", views.RunbookViewSet, basename="runbook")
router.register("actions", ActionViewSet, basename="runbook-action")  # the builder's generated forms
router.register("runbook-templates", RunbookTemplateViewSet, basename="runbook-template")  # the template library
