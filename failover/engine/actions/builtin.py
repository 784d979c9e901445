"""Import every built-in executor so each registers itself."""

from failover.engine.actions import basic, shell  # noqa: F401
