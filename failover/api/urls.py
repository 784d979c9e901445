"""This app's API routes; drplan/urls.py mounts every app's router (and `urlpatterns`) under /api/v1/dr/."""

from django.urls import re_path

from core.api.routers import ApiRouter
from failover.api import views
from plans.api.auditing import SLUG_OR_ID

router = ApiRouter()
router.register("executions", views.FailoverExecutionViewSet, basename="execution")

# Plain endpoints (not resources); each answers with and without a trailing slash.
urlpatterns = [
    re_path(r"^failover/?$", views.FailoverView.as_view(), name="failover"),
    re_path(r"^failover/status/?$", views.FailoverStatusView.as_view(), name="failover-status"),
    re_path(r"^failover/cancel/?$", views.FailoverCancelView.as_view(), name="failover-cancel"),
    re_path(r"^failover/validate/?$", views.FailoverValidateView.as_view(), name="failover-validate"),
    re_path(r"^failback/?$", views.FailbackView.as_view(), name="failback"),
    re_path(r"^test/?$", views.TestView.as_view(), name="test"),
    re_path(r"^test/results/?$", views.TestResultsView.as_view(), name="test-results"),
    re_path(r"^test/schedule/?$", views.TestScheduleView.as_view(), name="test-schedule"),
    # A runbook's runs (the runbook resource itself is runbooks/api/).
    re_path(rf"^runbooks/(?P<pk>{SLUG_OR_ID})/execute/?$", views.RunbookExecuteView.as_view(), name="runbook-execute"),
    re_path(rf"^runbooks/(?P<pk>{SLUG_OR_ID})/history/?$", views.RunbookHistoryView.as_view(), name="runbook-history"),
]
