"""Settings of the ML service process (port 8045): DRPlan's settings (same database, same environment
variables), with the service's own URL configuration and only the middleware it needs. Its endpoints are
not authenticated: the service listens on 127.0.0.1 only, for the main application."""

from drplan.settings import *  # noqa: F403

ROOT_URLCONF = "drplan.ml_urls"
WSGI_APPLICATION = "drplan.ml_wsgi.application"
MIDDLEWARE = [
    "core.middleware.RequestContextMiddleware",  # request id; bodies over 1 MiB → 413 before parsing
    "django.middleware.common.CommonMiddleware",
]
APPEND_SLASH = False
REST_FRAMEWORK = {
    **REST_FRAMEWORK,  # noqa: F405
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.AllowAny"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "UNAUTHENTICATED_USER": None,
}
