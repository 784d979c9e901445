"""Per-request context (request id) shared by audit and logging.

A contextvar rather than a thread-local, so it is correct under ASGI too.
"""

from __future__ import annotations

import contextvars
import uuid

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("drplan_request_id", default="")


def new_request_id() -> str:
    return uuid.uuid4().hex


def current_request_id() -> str:
    return request_id_var.get()
