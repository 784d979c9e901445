from django.urls import path

from failover.web import views

urlpatterns = [
    path("plans/<str:plan_id>/run/<slug:key>/", views.operation, name="plan-operation"),
    path("executions/", views.execution_list, name="executions"),
    path("approvals/", views.approvals_inbox, name="approvals"),
    path("approvals/executions/<int:pk>/", views.decide_execution, name="approval-execution"),
    path("approvals/runbook-versions/<int:pk>/", views.decide_runbook_version, name="approval-runbook-version"),
    path("schedules/", views.schedules, name="schedules"),
    path("schedules/<str:plan_id>/<slug:action>/", views.schedule_action, name="schedule-action"),
]
