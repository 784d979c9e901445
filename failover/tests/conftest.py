from __future__ import annotations

import pytest

from failover import services


@pytest.fixture
def enqueued(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Executions handed to the queue (on commit), instead of django-q2."""
    calls: list[int] = []
    monkeypatch.setattr(services, "_enqueue", calls.append)
    return calls
