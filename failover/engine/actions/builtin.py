"""Import every built-in executor so each registers itself."""

from failover.engine.actions import basic, http, python_call, shell, sql, tcp  # noqa: F401
