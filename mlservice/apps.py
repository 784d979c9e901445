from django.apps import AppConfig


class MlserviceConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "mlservice"
