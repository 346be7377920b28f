"""The jobs app's periodic work as django-q2 schedules, created idempotently by name."""

from __future__ import annotations

from django.conf import settings

RECONCILE_SCHEDULE_NAME = "jobs: reconcile"


def ensure_schedules() -> None:
    """Create or update the reconcile schedule, and a schedule for every enabled scheduled job.

    Called from `manage.py firstrun` (never at import or app start).
    """
    from django_q.models import Schedule

    from jobs.models import BackupJob
    from jobs.scheduling import sync_schedule

    Schedule.objects.update_or_create(
        name=RECONCILE_SCHEDULE_NAME,
        defaults={
            "func": "jobs.tasks.reconcile",
            "schedule_type": Schedule.MINUTES,
            "minutes": max(1, settings.VBR_RECONCILE_INTERVAL_MINUTES),
            "repeats": -1,
            "cluster": settings.Q_CLUSTER["name"],
        },
    )
    for job in BackupJob.objects.all():
        sync_schedule(job)
