from django.apps import AppConfig


class AnalyticsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "analytics"

    def ready(self) -> None:
        # django-q2's only worker start-up hook: each worker ensures the monitoring schedules (the probe
        # ticker and the hourly compaction; analytics/monitoring/tasks.py).
        from django_q.signals import post_spawn

        from analytics.monitoring.tasks import on_worker_start

        post_spawn.connect(on_worker_start, dispatch_uid="drplan-monitoring-worker-start")
