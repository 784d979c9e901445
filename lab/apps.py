from django.apps import AppConfig


class LabConfig(AppConfig):
    """The DR lab (`manage.py lab`): real servers on 127.0.0.1 that the Lab plan fails over. No models."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "lab"
    verbose_name = "DR lab"
