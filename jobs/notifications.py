"""A mail to the job's notification address when one of its sessions ends."""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.mail import send_mail

from jobs.choices import SessionState
from jobs.models import Session

log = logging.getLogger(__name__)


def notify_session_end(session: Session) -> bool:
    """Mail the outcome to the job's address (if it has one); False when nothing was sent.

    A mail server that can't be reached must not change the session's outcome:
    the failure is logged, not raised.
    """
    job = session.job
    if job is None or not job.notification_address:
        return False
    state = SessionState(session.state).label
    lines = [f"Job {job.name}: session {session.pk} ended {state.lower()}.", session.summary, ""]
    lines += [f"{t.vm_name}: {SessionState(t.state).label.lower()}{' — ' + t.error if t.error else ''}"
              for t in session.tasks.all()]
    try:
        send_mail(f"[backup] {job.name}: {state}", "\n".join(lines),
                  settings.DEFAULT_FROM_EMAIL, [job.notification_address])
    except OSError as exc:  # smtplib.SMTPException included
        log.warning("could not mail %s about session %s: %s", job.notification_address, session.pk, exc)
        session.warn(f"Could not send the notification to {job.notification_address}: {exc}")
        return False
    return True
