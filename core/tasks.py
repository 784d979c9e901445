"""django-q2 entry points of core: the periodic signed audit checkpoint (core/checkpoints.py)."""

from __future__ import annotations

from django.conf import settings
from django.utils import timezone
from django_q.models import Schedule

CHECKPOINT_SCHEDULE_NAME = "audit-checkpoint"


def sign_audit_checkpoint() -> str:
    from core import checkpoints

    checkpoint = checkpoints.sign_head(reason="scheduled", wait=True)
    return f"audit checkpoint #{checkpoint.seq} {checkpoint.hash[:16]}…"


def ensure_checkpoint_schedule() -> bool:
    """Create the checkpoint schedule if it does not exist; returns whether it was created."""
    if Schedule.objects.filter(name=CHECKPOINT_SCHEDULE_NAME).exists():
        return False
    Schedule.objects.create(
        name=CHECKPOINT_SCHEDULE_NAME,
        func="core.tasks.sign_audit_checkpoint",
        schedule_type=Schedule.MINUTES,
        minutes=max(1, settings.CHECKPOINT_INTERVAL_SECONDS // 60),
        repeats=-1,
        next_run=timezone.now(),
    )
    return True
