"""django-q2 tasks of the jobs app (control runner). Thin: they load a record and call the driver."""

from __future__ import annotations

from jobs.choices import Trigger
from jobs.models import BackupJob, Session


def run_session(session_id: int) -> str:
    """Drive one session to its end (enqueued by Session.enqueue)."""
    from jobs.driver import drive

    return drive(session_id)


def run_scheduled_job(job_id: int) -> str:
    """A job's schedule fired: make its session and drive it here, in this task."""
    job = BackupJob.objects.filter(pk=job_id).first()
    if job is None:
        return f"job {job_id} no longer exists"
    if not job.enabled:
        return f"job {job.name} is disabled"
    from jobs.services import running_session_of

    running = running_session_of(job)
    if running is not None and _holds_the_job(running):  # the last run overran the schedule
        running.warn(f"The schedule fired again ({job.schedule_label()}) while this session ran: "
                     "that run was skipped.")
        return f"job {job.name} is still running (session {running.pk}): this run was skipped"
    session = Session.objects.create(job=job, name=job.name, trigger=Trigger.SCHEDULE)
    session.log(f"Started by the schedule ({job.schedule_label()}).")
    return run_session(session.pk)


def _holds_the_job(session: Session) -> bool:
    """A running session, or one queued lately: a session stuck in the queue (its task was
    lost) must not hold the job's schedule back for good."""
    from datetime import timedelta

    from django.utils import timezone

    from jobs.choices import SessionState

    return session.state == SessionState.RUNNING or session.created > timezone.now() - timedelta(minutes=10)


def reconcile(dead: list[int] | None = None) -> str:
    """The periodic reconcile (schedule made by jobs.schedules.ensure_schedules), and the one a
    starting control runner queues with the sessions it found dead."""
    from jobs.reconcile import reconcile_all

    return reconcile_all(dead)
