"""Failover use cases. Starting and running executions arrive with the engine (a later issue)."""

from __future__ import annotations
