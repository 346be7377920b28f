"""Job notifications go through a real SMTP server (aiosmtpd on a free port)."""

import threading

import pytest
from aiosmtpd.controller import Controller
from django.core import mail
from django.core.mail.backends import locmem

from jobs.choices import SessionState
from jobs.models import Session, TaskSession
from jobs.notifications import notify_session_end
from tests.jobs import factories
from tests.support.processes import free_port

pytestmark = pytest.mark.django_db


class Inbox:
    """An aiosmtpd handler keeping what it was sent."""

    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        self.messages.append(envelope)
        return "250 OK"


@pytest.fixture
def smtp_server(settings):
    inbox, port = Inbox(), free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", port
    settings.DEFAULT_FROM_EMAIL = "backup@example.org"
    try:
        yield inbox
    finally:
        controller.stop()


def _ended_session(address: str) -> Session:
    job = factories.job(notification_address=address)
    session = Session.objects.create(job=job, name=job.name, state=SessionState.WARNING,
                                     summary="2 VM(s): 1 success, 1 warning")
    TaskSession.objects.create(session=session, vm_name="db1", state=SessionState.WARNING,
                               error="already in a backup")
    return session


def test_the_notification_reaches_the_smtp_server(smtp_server):
    session = _ended_session("ops@example.com")

    assert notify_session_end(session)

    [mail] = smtp_server.messages
    assert mail.mail_from == "backup@example.org" and mail.rcpt_tos == ["ops@example.com"]
    text = mail.content.decode()
    assert f"Job {session.job.name}: session {session.pk} ended warning." in text
    assert "db1: warning" in text and "already in a backup" in text


def test_an_unreachable_mail_server_is_logged_in_the_session_and_changes_nothing(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", free_port()  # nothing listens there
    session = _ended_session("ops@example.com")

    assert not notify_session_end(session)

    session.refresh_from_db()
    assert session.state == SessionState.WARNING
    assert "Could not send the notification to ops@example.com" in session.log_lines.last().message


def test_a_session_whose_driver_died_is_mailed_when_reconcile_fails_it(mailoutbox):
    from datetime import timedelta

    from django.utils import timezone

    from jobs.reconcile import fail_dead_sessions

    job = factories.job(notification_address="ops@example.org")
    session = Session.objects.create(job=job, name=job.name, state=SessionState.RUNNING,
                                     heartbeat=timezone.now() - timedelta(hours=1))
    assert fail_dead_sessions() == [session.pk]
    assert len(mailoutbox) == 1 and mailoutbox[0].subject == f"[backup] {job.name}: Failed"
    assert "its driver stopped" in mailoutbox[0].body


def test_a_driver_that_ends_after_reconcile_failed_its_session_doesnt_overwrite_or_mail(mailoutbox):
    from unittest import mock

    from jobs.driver.backup_session import drive

    job = factories.job(notification_address="ops@example.org")
    session = Session.objects.create(job=job, name=job.name)

    def failed_meanwhile(session):  # reconcile's verdict lands while the driver works
        Session.objects.filter(pk=session.pk).update(state=SessionState.FAILED, summary="driver died")
        return SessionState.SUCCESS, "1 VM(s): 1 success"

    with mock.patch("jobs.driver.backup_session._run_backup_session", side_effect=failed_meanwhile):
        assert "after reconcile" in drive(session.pk)
    session.refresh_from_db()
    assert session.state == SessionState.FAILED and mailoutbox == []
    assert "after reconcile had failed this session" in session.log_lines.last().message


class HeldMailServer(locmem.EmailBackend):
    """A mail server that takes its time: it answers once ``answer`` is set."""

    answer = threading.Event()

    def send_messages(self, messages):
        assert self.answer.wait(10), "the test never let the mail server answer"
        return super().send_messages(messages)


def _mail_thread(session: Session) -> threading.Thread:
    return next(t for t in threading.enumerate() if t.name == f"session-{session.pk}-mail")


def test_a_session_cancelled_while_queued_is_mailed_at_once_and_the_cancel_doesnt_wait_for_it(
        client_as, settings, django_capture_on_commit_callbacks):
    from django.urls import reverse
    from django_q.models import OrmQ

    from jobs.driver.backup_session import drive
    from vbrsite.roles import OPERATOR

    settings.EMAIL_BACKEND = f"{__name__}.HeldMailServer"
    HeldMailServer.answer.clear()
    job = factories.job(notification_address="ops@example.org")
    session = Session.objects.create(job=job, name=job.name)

    with django_capture_on_commit_callbacks(execute=True):
        response = client_as(OPERATOR).post(reverse("jobs:session_cancel", args=[session.pk]))
    # The page answered while the mail server still holds the mail.
    assert response.status_code == 302 and mail.outbox == []
    HeldMailServer.answer.set()
    _mail_thread(session).join(10)

    [sent] = mail.outbox
    assert sent.to == ["ops@example.org"] and sent.subject == f"[backup] {job.name}: Cancelled"
    assert f"session {session.pk} ended cancelled." in sent.body and "Cancelled while queued" in sent.body
    # Sent, not queued behind the sessions waiting for the control runner.
    assert not OrmQ.objects.exists()
    assert "not started again" in drive(session.pk)  # its task was already in the queue
    assert len(mail.outbox) == 1


@pytest.mark.parametrize("address", ["", None])
def test_a_session_cancelled_while_queued_with_no_address_to_mail_leaves_nothing_to_do(
        address, django_capture_on_commit_callbacks):
    job = factories.job(notification_address=address) if address is not None else None
    session = Session.objects.create(job=job, name="nightly")

    with django_capture_on_commit_callbacks() as callbacks:
        assert session.request_cancel()

    assert callbacks == []
