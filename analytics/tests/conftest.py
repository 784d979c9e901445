"""Fixtures of the analytics tests: the real webhook receiver and SMTP server of the notification tests.
(The real PostgreSQL pair of the monitoring probes is the root conftest's `pg_pair`.)"""

from analytics.tests.notification_support import receiver, smtp_server  # noqa: F401 (pytest fixtures)
