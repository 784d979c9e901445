"""Page-number pagination for every list: `?page=` (1-based, or `last`) and `?page_size=`."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import PageNumberPagination
from rest_framework.request import Request


class StandardPagination(PageNumberPagination):
    """`page_size` must be a positive integer (400 otherwise, rather than silently using the default);
    values above `max_page_size` are capped. A page past the end, or a `page` that is not a positive
    integer, is 404 (DRF's "Invalid page.")."""

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500

    def get_page_size(self, request: Request) -> int:
        raw = request.query_params.get(self.page_size_query_param)
        if not raw:  # absent or empty: the default
            return self.page_size
        digits = raw.lstrip("0") if raw.isascii() and raw.isdigit() else ""
        if not digits:
            raise ValidationError({self.page_size_query_param: [f"'{raw[:50]}' is not a positive integer."]})
        # Compare lengths first: int() of a very long digit string is slow or refused.
        if len(digits) > len(str(self.max_page_size)):
            return self.max_page_size
        return min(int(digits), self.max_page_size)

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        return [
            {"name": p.name, "required": False, "in": "query", "description": p.description, "schema": p.type}
            for p in PAGINATION_PARAMETERS
        ]


# The query parameters of every paginated list, for views that paginate by hand (@extend_schema).
PAGINATION_PARAMETERS = [
    OpenApiParameter(
        StandardPagination.page_query_param,
        {"type": "integer", "minimum": 1},
        description="Page number, from 1 (or `last`). A page past the end is 404.",
    ),
    OpenApiParameter(
        StandardPagination.page_size_query_param,
        {"type": "integer", "minimum": 1},
        description=f"Rows per page (default {StandardPagination.page_size}); values above "
        f"{StandardPagination.max_page_size} are capped at {StandardPagination.max_page_size}.",
    ),
]
