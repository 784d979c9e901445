from django.apps import AppConfig


class DRPlanConfig(AppConfig):
    """The project as an app: it wires the seams between the apps at start-up (drplan/wiring.py)
    and holds the project-wide commands."""

    name = "drplan"
    verbose_name = "DRPlan project"

    def ready(self) -> None:
        from drplan import wiring  # imports every app's modules: only once the app registry is ready

        wiring.connect()
