"""The workers' periodic work as django-q2 schedules on the control runner, created idempotently by name."""

from __future__ import annotations

from django.conf import settings

CHECK_SCHEDULE_NAME = "workers: check heartbeats"
IDLE_SCHEDULE_NAME = "workers: stop idle workers"
PURGE_SCHEDULE_NAME = "workers: purge finished disk tasks"


def ensure_schedules() -> None:
    """Create or update the heartbeat check (every minute), the idle stop (every 5 minutes)
    and the purge of finished disk tasks (daily).

    Called from `manage.py firstrun` (never at import or app start).
    """
    from django_q.models import Schedule

    for name, func, minutes in (
        (CHECK_SCHEDULE_NAME, "workers.tasks.check_workers", 1),
        (IDLE_SCHEDULE_NAME, "workers.tasks.stop_idle_workers", 5),
        (PURGE_SCHEDULE_NAME, "workers.tasks.purge_finished_tasks", 24 * 60),
    ):
        Schedule.objects.update_or_create(name=name, defaults={
            "func": func, "schedule_type": Schedule.MINUTES, "minutes": minutes, "repeats": -1,
            "cluster": settings.Q_CLUSTER["name"],
        })
