"""The real servers each template of the library's second half is run against (runbooks/tests/
test_template_runs_more.py): HAProxy in front of two HTTP sites, a MariaDB primary and replica, and moto's
AWS emulator. A factory starts them in a temporary folder, yields the run's parameters and secrets and a
`verify()` that asserts, on those servers, the state after the failover; it stops them by pid on exit."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from failover.tests.engine_support import wait_for
from failover.tests.haproxy_support import BACKEND, HOST, Client, running_haproxy

try:  # the shared shape (runbooks/tests/template_targets.py) once the library's first half is there
    from runbooks.tests.template_targets import TemplateTarget
except ImportError:  # pragma: no cover - until then, the same dataclass

    @dataclass
    class TemplateTarget:  # type: ignore[no-redef]
        params: dict[str, Any]
        secrets: dict[str, str]
        verify: Callable[[], None]


TargetFactory = Callable[[Path], AbstractContextManager[TemplateTarget]]


@contextlib.contextmanager
def active_active_haproxy(root: Path) -> Iterator[TemplateTarget]:
    """HAProxy (runtime API over TCP) with site-a at weight 100 and site-b at 0, both up; a client sends
    requests through it from before the run until verify(), which asserts none failed, both sites served
    during the run, and every request after it reaches site B."""
    with running_haproxy(root) as proxy:
        client = Client(proxy).start()

        def verify() -> None:
            before = client.total
            wait_for(lambda: client.total >= before + 20, timeout=60)
            client.stop()
            assert client.failures == 0, client.reasons
            assert client.sites["site-a"] > 0 and client.sites["site-b"] > 0, dict(client.sites)
            assert client.last[-20:] == ["site-b"] * 20
            assert proxy.weights() == {"site-a": 0, "site-b": 100}
            assert proxy.status("site-a") == "DRAIN"

        try:
            yield TemplateTarget(
                params={
                    "backend": BACKEND,
                    "site_a": "site-a",
                    "site_b": "site-b",
                    "public_url": f"http://{HOST}:{proxy.port}/health",
                    "soak_seconds": 1,
                },
                secrets={"lb_runtime_api": proxy.api_address},
                verify=verify,
            )
        finally:
            client.stop()


TARGETS_MORE: dict[str, TargetFactory] = {
    "active-active-haproxy": active_active_haproxy,
}
