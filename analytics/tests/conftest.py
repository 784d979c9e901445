"""Fixtures of the analytics tests: the real webhook receiver and SMTP server of the notification tests."""

from analytics.tests.notification_support import receiver, smtp_server  # noqa: F401 (pytest fixtures)
