"""Job notifications go through a real SMTP server (aiosmtpd on a free port)."""

import pytest
from aiosmtpd.controller import Controller

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


def test_a_session_cancelled_while_queued_is_mailed_once_by_the_control_runner_not_by_the_cancel(
        client_as, mailoutbox, monkeypatch, django_capture_on_commit_callbacks):
    from django.urls import reverse
    from django_q.conf import Conf
    from django_q.models import Task

    from jobs.driver.backup_session import drive
    from vbrsite.roles import OPERATOR

    monkeypatch.setattr(Conf, "SYNC", True)  # a queued task runs here, as the control runner would
    job = factories.job(notification_address="ops@example.org")
    session = Session.objects.create(job=job, name=job.name)

    with django_capture_on_commit_callbacks(execute=True):
        client_as(OPERATOR).post(reverse("jobs:session_cancel", args=[session.pk]))
        assert mailoutbox == []  # a mail server that doesn't answer can't hold the Cancel button
    assert "not started again" in drive(session.pk)  # its task was already in the queue

    [mail] = mailoutbox
    assert mail.to == ["ops@example.org"] and mail.subject == f"[backup] {job.name}: Cancelled"
    assert f"session {session.pk} ended cancelled." in mail.body and "Cancelled while queued" in mail.body
    [task] = Task.objects.filter(func="jobs.tasks.mail_session_end")
    assert task.cluster == "control" and task.args == (session.pk,) and task.success
