from django.apps import AppConfig


class DRPlanConfig(AppConfig):
    """The project as an app: it wires the seams between the apps at start-up (drplan/wiring.py)
    and holds the project-wide commands."""

    default = True  # the `drplan` entry of INSTALLED_APPS; the module holds another config below
    name = "drplan"
    verbose_name = "DRPlan project"

    def ready(self) -> None:
        from drplan import wiring  # imports every app's modules: only once the app registry is ready

        wiring.connect()


class DaphneRunserverConfig(AppConfig):
    """Daphne as an app, for its ASGI `runserver` only, without importing its server (Twisted, Autobahn:
    ~0.2 s) in every process. daphne.apps imports the server at app loading so that its asyncio reactor is
    installed before anything imports twisted's default one; nothing in DRPlan imports Twisted, and the
    commands that serve (daphne's `runserver`, `python -m daphne`) import the server themselves first.
    Listed before django.contrib.staticfiles, so daphne's `runserver` replaces Django's."""

    name = "daphne"
    label = "daphne"
    verbose_name = "Daphne"
