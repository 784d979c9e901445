"""ASGI entry point: HTTP (Django) and websockets (Channels).

Websockets are session-authenticated (AuthMiddlewareStack) and must come from a page served by one of
ALLOWED_HOSTS (AllowedHostsOriginValidator refuses other or missing Origin headers).
HTTP requests go through core.requestgate.RequestGate (DRPLAN_HTTP_SLOTS at once; by default one on SQLite).
A web node measures its clock against the database server's on its first request and then at most every
DRPLAN_CLOCK_CHECK_SECONDS (core.dbtime.ClockCheck), for GET /api/v1/dr/health/clocks.
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "drplan.settings")

django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from django.conf import settings  # noqa: E402

from core.dbtime import ClockCheck  # noqa: E402
from core.requestgate import RequestGate  # noqa: E402
from failover.live.routing import websocket_urlpatterns  # noqa: E402

http_app = django_asgi_app
if settings.HTTP_SLOTS:
    http_app = RequestGate(http_app, slots=settings.HTTP_SLOTS, hold_seconds=settings.HTTP_SLOT_HOLD_SECONDS)

application = ClockCheck(
    ProtocolTypeRouter(
        {
            "http": http_app,
            "websocket": AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
        }
    )
)
