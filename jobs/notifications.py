"""A mail to the job's notification address when one of its sessions ends."""

from __future__ import annotations

import logging
import threading

from django.conf import settings
from django.core.mail import EmailMessage
from django.db import connection

from jobs.choices import SessionState
from jobs.models import Session

log = logging.getLogger(__name__)


def notify_session_end(session: Session) -> bool:
    """Mail the outcome to the job's address (if it has one); False when nothing was sent.

    A mail server that can't be reached must not change the session's outcome:
    the failure is logged, not raised.
    """
    message = session_end_mail(session)
    return message is not None and _send(session, message)


def notify_session_end_soon(session: Session) -> threading.Thread | None:
    """Mail the outcome from a thread of its own, for a caller that must not wait on the mail
    server (the Cancel button, cancel_session); the thread, or None when there is nothing to send.

    Not through the control runner's queue: there the mail waited behind every queued
    session, hours on a busy night. Not a daemon thread: a command's process waits for it
    before exiting (EMAIL_TIMEOUT bounds that), where a daemon would be cut off unsent.
    """
    message = session_end_mail(session)
    if message is None:
        return None
    thread = threading.Thread(target=_send_in_thread, args=(session, message),
                              name=f"session-{session.pk}-mail")
    thread.start()
    return thread


def session_end_mail(session: Session) -> EmailMessage | None:
    """The mail saying how the session ended, or None when its job has no notification address."""
    job = session.job
    if job is None or not job.notification_address:
        return None
    state = SessionState(session.state).label
    lines = [f"Job {job.name}: session {session.pk} ended {state.lower()}.", session.summary, ""]
    lines += [f"{t.vm_name}: {SessionState(t.state).label.lower()}{' — ' + t.error if t.error else ''}"
              for t in session.tasks.all()]
    return EmailMessage(f"[backup] {job.name}: {state}", "\n".join(lines), settings.DEFAULT_FROM_EMAIL,
                        [job.notification_address])


def _send(session: Session, message: EmailMessage) -> bool:
    try:
        message.send()
    except OSError as exc:  # smtplib.SMTPException included
        address = ", ".join(message.to)
        log.warning("could not mail %s about session %s: %s", address, session.pk, exc)
        session.warn(f"Could not send the notification to {address}: {exc}")
        return False
    return True


def _send_in_thread(session: Session, message: EmailMessage) -> None:
    try:
        _send(session, message)
    except Exception:  # nothing above this thread would log it
        log.exception("mail about session %s failed", session.pk)
    finally:
        connection.close()  # the one this thread opened to log a failure, if it did
