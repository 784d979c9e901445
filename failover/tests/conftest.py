from __future__ import annotations

import pytest

from failover import common


@pytest.fixture
def enqueued(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Executions handed to the queue (on commit), instead of django-q2."""
    calls: list[int] = []
    monkeypatch.setattr(common, "_enqueue", calls.append)
    return calls
