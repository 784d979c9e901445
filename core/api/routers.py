"""Routers for the API: every route answers with and without a trailing slash."""

from __future__ import annotations

from rest_framework.routers import DefaultRouter, SimpleRouter


class ApiRouter(SimpleRouter):
    """A SimpleRouter whose routes take an optional trailing slash (`/plans` and `/plans/`).

    DRF turns any truthy `trailing_slash` argument into "/", so the pattern is set after init.
    """

    def __init__(self) -> None:
        super().__init__()
        self.trailing_slash = "/?"


def api_root_router(*routers: SimpleRouter) -> DefaultRouter:
    """One router whose root view lists the resources of every app's router."""
    root = DefaultRouter()
    root.trailing_slash = "/?"
    for router in routers:
        root.registry.extend(router.registry)
    return root
