"""Destructive actions ask first: cancelling a session, deleting a job, removing a worker."""

import re

import pytest
from playwright.sync_api import expect

from jobs.models import BackupJob, Session
from tests.browser.conftest import log_in
from tests.jobs import factories

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def job(db):
    _, _, vms = factories.inventory(vm_names=("web1",))
    return factories.job("nightly", vms=vms)


def test_cancelling_a_session_asks_first(page, live_server, admin_user, job):
    session = Session.objects.create(job=job, name=job.name)  # queued: nothing runs it here
    log_in(page, live_server, admin_user, admin_user.plain_password)
    page.get_by_role("heading", name="Dashboard").wait_for()
    page.goto(f"{live_server.url}{session.get_absolute_url()}")

    page.once("dialog", lambda dialog: dialog.dismiss())
    page.get_by_role("button", name="Cancel session").click()
    page.wait_for_timeout(500)
    session.refresh_from_db()
    assert session.state == "pending"

    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Cancel session").click()
    expect(page.locator("#session-state")).to_have_text("Cancelled")


def test_deleting_a_job_asks_first_and_keep_it_keeps_it(page, live_server, admin_user, job):
    log_in(page, live_server, admin_user, admin_user.plain_password)
    page.get_by_role("heading", name="Dashboard").wait_for()
    page.goto(f"{live_server.url}/jobs/{job.pk}/delete/")
    page.get_by_role("heading", name="Delete nightly?").wait_for()
    page.get_by_role("button", name="Keep it").click()
    page.wait_for_url(re.compile(rf"/jobs/{job.pk}/$"))
    assert BackupJob.objects.filter(pk=job.pk).exists()

    page.goto(f"{live_server.url}/jobs/{job.pk}/delete/")
    page.get_by_role("button", name="Delete the job").click()
    page.wait_for_url(re.compile(r"/jobs/$"))
    assert not BackupJob.objects.filter(pk=job.pk).exists()


def test_removing_a_worker_needs_an_explicit_yes(page, live_server, admin_user, job):
    from workers.models import Worker

    vm = job.vms.first()
    worker = Worker.objects.create(name="w1", manager=vm.manager, cluster=vm.cluster, state="stopped")
    log_in(page, live_server, admin_user, admin_user.plain_password)
    page.get_by_role("heading", name="Dashboard").wait_for()
    page.goto(f"{live_server.url}/workers/{worker.pk}/remove/")
    page.get_by_role("button", name="Remove").click()
    yes = page.get_by_label("Yes, I mean it")
    assert yes.evaluate("box => box.validity.valueMissing")  # the browser refuses to send it
    assert page.url.endswith(f"/workers/{worker.pk}/remove/")
    worker.refresh_from_db()
    assert worker.state == "stopped"
