from django.apps import AppConfig


class AnalyticsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "analytics"

    def ready(self) -> None:
        # django-q2 has no worker start-up hook but this signal: each worker process, when spawned, ensures
        # the notifications' every-minute schedule (analytics/notifications/tasks.py) and the monitoring
        # schedules (the probe ticker and the hourly compaction; analytics/monitoring/tasks.py).
        from django_q.signals import post_spawn

        from analytics.monitoring.tasks import on_worker_start as start_monitoring
        from analytics.notifications.tasks import on_worker_start as start_notifications

        post_spawn.connect(start_notifications, dispatch_uid="drplan-notifications-worker-start")
        post_spawn.connect(start_monitoring, dispatch_uid="drplan-monitoring-worker-start")
