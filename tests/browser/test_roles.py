"""The roles in a real browser: a Restore operator can restore but can't edit jobs; an Operator can
run jobs but can't change managers."""

import re

import pytest
from django.contrib.auth.models import Group
from playwright.sync_api import expect

from jobs.models import Session
from tests.browser.conftest import log_in
from tests.browser.navigation import nav
from tests.jobs import factories

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "role-test-password"


@pytest.fixture
def job(db):
    _, _, vms = factories.inventory(vm_names=("web1",))
    repository = factories.repository()
    job = factories.job("nightly", vms=vms, repository=repository)
    factories.restore_point(vms[0], repository, job.created, job=job)
    return job


def user_with_role(django_user_model, name: str, role: str):
    user = django_user_model.objects.create_user(name, password=PASSWORD)
    user.groups.add(Group.objects.get_or_create(name=role)[0])  # transactional tests flush the groups
    return user


def status_of(page, url: str) -> int:
    return page.goto(url).status


def test_a_restore_operator_can_restore_but_not_edit_jobs(page, live_server, django_user_model, job):
    user = user_with_role(django_user_model, "rita", "Restore operator")
    log_in(page, live_server, user, PASSWORD)
    page.get_by_role("heading", name="Dashboard").wait_for()

    nav(page, "Jobs")
    page.get_by_role("link", name="nightly").first.wait_for()
    expect(page.get_by_role("button", name="New job")).to_have_count(0)
    expect(page.get_by_role("button", name="Run now")).to_have_count(0)
    assert status_of(page, f"{live_server.url}/jobs/new/name/") == 403
    assert status_of(page, f"{live_server.url}/jobs/{job.pk}/edit/name/") == 403
    assert status_of(page, f"{live_server.url}/jobs/{job.pk}/delete/") == 403

    page.goto(f"{live_server.url}/jobs/{job.pk}/")
    page.get_by_role("link", name=re.compile("web1")).first.click()  # the restore point
    page.get_by_role("button", name="Restore…").click()
    page.get_by_label(re.compile("Entire VM to its original location")).check()
    page.get_by_role("button", name="Next").click()
    page.get_by_role("button", name="Next").click()
    page.get_by_role("button", name="Start restore").click()
    page.wait_for_url(re.compile(r"/jobs/sessions/\d+/$"))
    session = Session.objects.get()
    assert session.kind == "restore" and session.created_by == user


def test_an_operator_can_run_jobs_but_not_change_managers(page, live_server, django_user_model, job):
    user = user_with_role(django_user_model, "olga", "Operator")
    log_in(page, live_server, user, PASSWORD)
    page.get_by_role("heading", name="Dashboard").wait_for()

    nav(page, "Jobs")
    page.get_by_role("link", name="nightly").first.click()
    page.get_by_role("button", name="Run now").click()
    page.wait_for_url(re.compile(r"/jobs/sessions/\d+/$"))
    session = Session.objects.get()
    assert session.job == job and session.created_by == user

    nav(page, "Inventory")
    page.goto(f"{live_server.url}/inventory/managers/")
    page.get_by_text("engine1").first.wait_for()
    expect(page.get_by_role("button", name="Add manager")).to_have_count(0)
    expect(page.get_by_role("link", name="engine1")).to_have_count(0)
    assert status_of(page, f"{live_server.url}/inventory/managers/add/") == 403
    manager_pk = job.vms.first().manager_id
    assert status_of(page, f"{live_server.url}/inventory/managers/{manager_pk}/") == 403
