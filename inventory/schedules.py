"""The inventory's periodic work as django-q2 schedules, created idempotently by name."""

from __future__ import annotations

from django.conf import settings

SYNC_SCHEDULE_NAME = "inventory: sync managers"


def ensure_schedules() -> None:
    """Create or update the schedule that syncs every manager each VBR_SYNC_INTERVAL_MINUTES.

    Called from `manage.py firstrun` (never at import or app start).
    """
    from django_q.models import Schedule

    Schedule.objects.update_or_create(
        name=SYNC_SCHEDULE_NAME,
        defaults={
            "func": "inventory.tasks.sync_all_managers",
            "schedule_type": Schedule.MINUTES,
            "minutes": max(1, settings.VBR_SYNC_INTERVAL_MINUTES),
            "repeats": -1,
            "cluster": settings.Q_CLUSTER["name"],
        },
    )
