"""Template filters for people-readable figures (core/formatting.py): `{% load drformat %}`, then

{{ plan.rto_seconds|duration }}         15 min, 24 h, 1 h 02 min
{{ elapsed|duration_precise }}          1 h 02 min 03 s
{{ execution.triggered_at|localtime_tz }}   2026-12-02 09:15 CET  (|localtime_tz_seconds with seconds)
{{ plan.downtime_cost_per_hour|money }} $12,500.00
"""

from __future__ import annotations

from typing import Any

from django import template
from django.utils.html import format_html
from django.utils.safestring import SafeString

from core import formatting

register = template.Library()


@register.filter
def duration(seconds: Any) -> str:
    return formatting.duration(seconds)


@register.filter
def duration_precise(seconds: Any) -> str:
    return formatting.duration(seconds, precise=True)


@register.filter
def localtime_tz(value: Any) -> str:
    return formatting.local_time(value)


@register.filter
def localtime_tz_seconds(value: Any) -> str:
    return formatting.local_time(value, seconds=True)


@register.filter
def time_tz(value: Any) -> str:
    return formatting.local_time(value, seconds=True, date=False)


@register.filter
def money(amount: Any) -> str:
    return formatting.money(amount)


@register.filter
def when(value: Any) -> SafeString | str:
    """A <time> element: machine-readable datetime attribute, local time with the zone as text."""
    moment = formatting.as_datetime(value)
    if moment is None:
        return formatting.MISSING
    return format_html('<time datetime="{}">{}</time>', moment.isoformat(), formatting.local_time(moment))
