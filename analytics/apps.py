from django.apps import AppConfig


class AnalyticsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "analytics"

    def ready(self) -> None:
        # django-q2 has no worker start-up hook but this signal: each worker process, when spawned,
        # ensures the notifications' every-minute schedule (analytics/notifications/tasks.py).
        from django_q.signals import post_spawn

        from analytics.notifications.tasks import on_worker_start

        post_spawn.connect(on_worker_start, dispatch_uid="drplan-notifications-worker-start")
