"""A job's schedule as a cron expression, and the django-q2 Schedule row kept in step with the job."""

from __future__ import annotations

from datetime import datetime

from croniter import CroniterBadDateError, croniter
from django.conf import settings
from django.utils import timezone

from jobs.choices import ScheduleKind

SCHEDULE_PREFIX = "jobs: backup job "


def schedule_name(job_id: int) -> str:
    """The django-q2 Schedule name of a job (unique, so sync is idempotent)."""
    return f"{SCHEDULE_PREFIX}{job_id}"


def cron_error(expression: str) -> str:
    """What is wrong with a cron expression, or "" when it is usable."""
    expression = (expression or "").strip()
    if len(expression.split()) != 5:
        return "Use five fields: minute hour day-of-month month day-of-week, e.g. 30 22 * * 1-5."
    if not croniter.is_valid(expression):
        return f"{expression!r} is not a valid cron expression (e.g. 30 22 * * 1-5)."
    try:
        croniter(expression, timezone.localtime()).get_next(datetime)
    except CroniterBadDateError:
        return f"{expression!r} never fires (no such date, e.g. 31 February): choose a day that exists."
    return ""


def cron_of(job) -> str:
    """The job's schedule as cron (weekday 0 = Sunday in cron; 0 = Monday in the job)."""
    at = job.schedule_time
    if job.schedule_kind == ScheduleKind.CRON:
        return job.schedule_cron.strip()
    if job.schedule_kind == ScheduleKind.MANUAL or at is None:
        return ""
    if job.schedule_kind == ScheduleKind.DAILY:
        return f"{at.minute} {at.hour} * * *"
    if job.schedule_kind == ScheduleKind.WEEKDAYS:
        days = ",".join(str((d + 1) % 7) for d in sorted(job.schedule_weekdays))
        return f"{at.minute} {at.hour} * * {days}"
    if job.schedule_kind == ScheduleKind.MONTHLY:
        return f"{at.minute} {at.hour} {job.schedule_day or 1} * *"
    return ""


def next_run_of(job, now: datetime | None = None) -> datetime | None:
    """The next time the schedule fires (what the runner's Schedule row says, when there is one)."""
    from django_q.models import Schedule

    row = Schedule.objects.filter(name=schedule_name(job.pk)).only("next_run").first()
    if row is not None and row.next_run:
        return row.next_run
    cron = cron_of(job)
    if not cron:
        return None
    return croniter(cron, timezone.localtime(now or timezone.now())).get_next(datetime)


def sync_schedule(job) -> None:
    """Create, change or remove the job's Schedule row so it matches the job."""
    from django_q.models import Schedule

    cron = cron_of(job) if job.enabled else ""
    name = schedule_name(job.pk)
    if not cron:
        Schedule.objects.filter(name=name).delete()
        return
    row = Schedule.objects.filter(name=name).first()
    if row is not None and row.cron == cron and row.func == "jobs.tasks.run_scheduled_job":
        return
    next_run = croniter(cron, timezone.localtime()).get_next(datetime)
    Schedule.objects.update_or_create(name=name, defaults={
        "func": "jobs.tasks.run_scheduled_job", "args": repr((job.pk,)), "kwargs": None,
        "schedule_type": Schedule.CRON, "cron": cron, "repeats": -1, "next_run": next_run,
        "cluster": settings.Q_CLUSTER["name"],
    })


def remove_schedule(job_id: int) -> None:
    """Delete a job's Schedule row (the job is being deleted)."""
    from django_q.models import Schedule

    Schedule.objects.filter(name=schedule_name(job_id)).delete()
