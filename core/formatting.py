"""Durations, times and money for people: one set of rules for every page, the console and the admin.

    duration(900) == "15 min"        duration(86400) == "24 h"        duration(3720) == "1 h 02 min"
    duration(245) == "4 min 05 s"    duration(3723, precise=True) == "1 h 02 min 03 s"
    local_time(dt) == "2026-12-02 09:15 CET"   (settings.TIME_ZONE, DRPLAN_TIME_ZONE)
    money(Decimal("12500")) == "$12,500.00"    (settings.DRPLAN_CURRENCY, DRPLAN_CURRENCY)

The template filters in core/templatetags/drformat.py call these; the console's JavaScript has a twin of
duration() (failover/static/failover/console.js, durationText), tested against the same cases.
"""

from __future__ import annotations

from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from django.conf import settings
from django.utils import timezone
from django.utils.dateparse import parse_datetime

MISSING = "—"
DAYS_FROM_HOURS = 72  # up to 72 h a duration reads in hours ("24 h", "48 h"); from then on in days
CURRENCY_SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥", "INR": "₹"}


def duration(seconds: float | int | Decimal | None, *, precise: bool = False) -> str:
    """A duration in seconds for people. Seconds are shown under an hour (and with `precise`, a running
    clock, under 72 hours too); zero parts at the end are dropped ("15 min", "24 h"); None is "—"."""
    if seconds is None or seconds == "":
        return MISSING
    try:
        total = int(Decimal(str(seconds)).quantize(Decimal(1), rounding=ROUND_HALF_UP))
    except (InvalidOperation, ValueError):
        return MISSING
    if total < 0:
        return "−" + duration(-total, precise=precise)
    if total < 60:
        return f"{total} s"
    minutes, secs = divmod(total, 60)
    if total < 3600:
        return f"{minutes} min" if secs == 0 else f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    if hours < DAYS_FROM_HOURS:
        if precise:
            return f"{hours} h {minutes:02d} min {secs:02d} s"
        return f"{hours} h" if minutes == 0 else f"{hours} h {minutes:02d} min"
    days, hours = divmod(hours, 24)
    return f"{days} d" if hours == 0 else f"{days} d {hours} h"


def as_datetime(value: Any) -> datetime | None:
    if isinstance(value, str):
        value = parse_datetime(value) if value else None
    return value if isinstance(value, datetime) else None


def local_time(value: Any, *, seconds: bool = False, date: bool = True) -> str:
    """An aware datetime (or ISO string) in the server's configured time zone, with the zone's name."""
    moment = as_datetime(value)
    if moment is None:
        return MISSING
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment, timezone.get_default_timezone())
    local = timezone.localtime(moment)
    pattern = ("%Y-%m-%d " if date else "") + ("%H:%M:%S" if seconds else "%H:%M")
    return f"{local.strftime(pattern)} {local.tzname()}"


def currency() -> str:
    return str(getattr(settings, "DRPLAN_CURRENCY", "USD")).upper()


def currency_parts() -> tuple[str, str]:
    """(prefix, suffix) around an amount: ("$", "") for USD, ("", " CHF") for a currency without a symbol."""
    code = currency()
    symbol = CURRENCY_SYMBOLS.get(code)
    return (symbol, "") if symbol else ("", f" {code}")


def money(amount: Any, *, decimals: int = 2) -> str:
    """An amount in the configured currency, grouped by thousands: "$12,500.00", "1,200.50 CHF"."""
    if amount is None or amount == "":
        return MISSING
    try:
        value = Decimal(str(amount))
    except (InvalidOperation, ValueError):
        return MISSING
    prefix, suffix = currency_parts()
    sign = "−" if value < 0 else ""
    return f"{sign}{prefix}{abs(value):,.{decimals}f}{suffix}"
