"""Domain errors raised by services; the API turns them into the standard error shape."""

from __future__ import annotations


class DomainError(Exception):
    """A rule of the domain was broken. `code` is machine-readable, `field` names the input."""

    status_code = 400
    default_code = "invalid"

    def __init__(self, message: str, *, code: str | None = None, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        self.field = field


class InvalidInput(DomainError):
    status_code = 400
    default_code = "validation_error"


class NotFound(DomainError):
    """Something the request names (a path's sub-resource, such as an execution's step) does not exist."""

    status_code = 404
    default_code = "not_found"


class Conflict(DomainError):
    status_code = 409
    default_code = "conflict"


class PermissionDenied(DomainError):
    status_code = 403
    default_code = "permission_denied"
