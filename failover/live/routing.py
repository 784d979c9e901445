"""Websocket URLs (mounted by drplan/asgi.py)."""

from django.urls import path

from failover.live.consumers import ExecutionStreamConsumer

websocket_urlpatterns = [
    path("ws/executions/<int:execution_id>/", ExecutionStreamConsumer.as_asgi()),
]
