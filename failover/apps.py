from django.apps import AppConfig


class FailoverConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "failover"

    def ready(self) -> None:
        # django-q2 has no worker start-up hook but this signal: each worker process, when
        # spawned, ensures the reaper schedule and reaps once (failover/tasks.py).
        from django_q.signals import post_spawn

        from failover.tasks import on_worker_start

        post_spawn.connect(on_worker_start, dispatch_uid="drplan-engine-worker-start")
