"""The jobs pages for each role: list, wizard, actions, session page and its live fragment, history."""

import pytest
from django.urls import reverse

from jobs.choices import ScheduleKind, SessionState, VmSelection
from jobs.models import BackupJob, Session, TaskSession
from tests.jobs import factories
from vbrsite.roles import ADMINISTRATOR, OPERATOR, RESTORE_OPERATOR

pytestmark = pytest.mark.django_db


@pytest.fixture
def setup(db):
    manager, cluster, vms = factories.inventory()
    repo = factories.repository()
    job = factories.job("nightly", vms=vms[:1], repository=repo)
    return {"vms": vms, "cluster": cluster, "repo": repo, "job": job}


@pytest.mark.parametrize("role", [ADMINISTRATOR, OPERATOR, RESTORE_OPERATOR])
def test_every_role_sees_the_jobs_and_sessions(client_as, setup, role):
    client = client_as(role)
    page = client.get(reverse("jobs:index")).content.decode()
    assert "nightly" in page and "never run" in page
    assert ("New job" in page) == (role == ADMINISTRATOR)
    assert ("Run now" in page) == (role in (ADMINISTRATOR, OPERATOR))
    assert client.get(reverse("jobs:sessions")).status_code == 200
    assert client.get(reverse("jobs:detail", args=[setup["job"].pk])).status_code == 200


@pytest.mark.parametrize("role", [OPERATOR, RESTORE_OPERATOR])
def test_only_administrators_create_edit_or_delete_jobs(client_as, setup, role):
    client = client_as(role)
    assert client.get(reverse("jobs:new", args=["name"])).status_code == 403
    assert client.get(reverse("jobs:edit", args=[setup["job"].pk, "name"])).status_code == 403
    assert client.post(reverse("jobs:delete", args=[setup["job"].pk])).status_code == 403
    assert BackupJob.objects.filter(pk=setup["job"].pk).exists()


def test_a_restore_operator_can_not_run_cancel_or_disable(client_as, setup):
    client = client_as(RESTORE_OPERATOR)
    job = setup["job"]
    assert client.post(reverse("jobs:run", args=[job.pk])).status_code == 403
    assert client.post(reverse("jobs:enable", args=[job.pk]), {"enabled": "0"}).status_code == 403
    session = Session.objects.create(job=job, name=job.name, state=SessionState.RUNNING)
    assert client.post(reverse("jobs:session_cancel", args=[session.pk])).status_code == 403
    assert Session.objects.get(pk=session.pk).cancel_requested is False
    assert Session.objects.count() == 1 and BackupJob.objects.get(pk=job.pk).enabled


def test_an_operator_runs_a_job_and_lands_on_its_session(client_as, setup, django_capture_on_commit_callbacks):
    client = client_as(OPERATOR)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("jobs:run", args=[setup["job"].pk]), {"full": "1"})
    session = Session.objects.get()
    assert response.status_code == 302 and response["Location"] == session.get_absolute_url()
    assert session.full and session.state == SessionState.PENDING and session.task_id
    assert session.created_by.username == "operator"


def test_an_operator_disables_and_enables_a_scheduled_job_and_its_schedule_follows(client_as, setup):
    from django_q.models import Schedule

    job = setup["job"]
    job.schedule_kind, job.schedule_cron = ScheduleKind.CRON, "30 22 * * *"
    job.save()
    assert Schedule.objects.filter(name=f"jobs: backup job {job.pk}").exists()
    client = client_as(OPERATOR)
    client.post(reverse("jobs:enable", args=[job.pk]), {"enabled": "0"})
    assert not BackupJob.objects.get(pk=job.pk).enabled
    assert not Schedule.objects.filter(name=f"jobs: backup job {job.pk}").exists()
    client.post(reverse("jobs:enable", args=[job.pk]), {"enabled": "1"})
    assert Schedule.objects.get(name=f"jobs: backup job {job.pk}").cron == "30 22 * * *"


def _walk_wizard(client, base, steps):
    for step, data in steps:
        response = client.post(reverse(base[0], args=[*base[1:], step]), data)
        assert response.status_code == 302, response.content.decode()[-3000:]
    return client.post(reverse(base[0], args=[*base[1:], "summary"]))


def test_an_administrator_creates_a_tag_job_with_the_wizard(client_as, setup):
    client = client_as(ADMINISTRATOR)
    assert "web1" in client.get(reverse("jobs:new", args=["vms"]) + "?restart=1").content.decode()
    response = _walk_wizard(client, ("jobs:new",), [
        ("name", {"name": "prod", "description": "Production"}),
        ("vms", {"selection": VmSelection.TAG, "tag": "production"}),
        ("storage", {"repository": setup["repo"].pk, "retention_kind": "points", "retain": 14,
                     "gfs_weekly": 4, "gfs_monthly": 0, "gfs_yearly": 0, "active_full_kind": "weekdays",
                     "active_full_weekdays": ["5"], "parallel_vms": 3}),
        ("schedule", {"schedule_kind": "weekdays", "schedule_time": "22:30", "schedule_weekdays": ["0", "2"],
                      "enabled": "on"}),
    ])
    job = BackupJob.objects.get(name="prod")
    assert response.status_code == 302 and response["Location"] == job.get_absolute_url()
    assert [vm.name for vm in job.resolve_vms()] == ["web1"]
    assert job.retain == 14 and job.gfs_weekly == 4 and job.active_full_weekdays == [5]
    assert job.cron() == "30 22 * * 1,3" and job.next_run() is not None
    page = client.get(job.get_absolute_url()).content.decode()
    assert "Mon, Wed at 22:30" in page


def test_the_wizard_shows_errors_at_the_field(client_as, setup):
    client = client_as(ADMINISTRATOR)
    client.get(reverse("jobs:new", args=["name"]) + "?restart=1")
    page = client.post(reverse("jobs:new", args=["name"]), {"name": "nightly"}).content.decode()
    assert "exists already" in page
    page = client.post(reverse("jobs:new", args=["vms"]), {"selection": "tag"}).content.decode()
    assert 'id="tag-error"' not in page and "Give the tag" in page
    page = client.post(reverse("jobs:new", args=["schedule"]),
                       {"schedule_kind": "cron", "schedule_cron": "every night"}).content.decode()
    assert 'id="schedule_cron-error"' in page and "five fields" in page
    assert client.get(reverse("jobs:new", args=["summary"])).status_code == 302
    assert BackupJob.objects.count() == 1


def test_an_administrator_edits_a_job_through_the_wizard(client_as, setup):
    client = client_as(ADMINISTRATOR)
    job = setup["job"]
    page = client.get(reverse("jobs:edit", args=[job.pk, "name"]) + "?restart=1").content.decode()
    assert 'value="nightly"' in page
    client.post(reverse("jobs:edit", args=[job.pk, "vms"]),
                {"selection": "explicit", "vms": [vm.pk for vm in setup["vms"]]})
    client.post(reverse("jobs:edit", args=[job.pk, "summary"]))
    assert {vm.name for vm in BackupJob.objects.get(pk=job.pk).resolve_vms()} == {"web1", "db1"}


def test_editing_a_job_shows_a_chosen_vm_an_in_place_restore_re_created_as_chosen(client_as, setup):
    job = setup["job"]
    recreated = factories.restored_in_place(setup["vms"][0])  # before the job's next run moved its choice
    page = client_as(ADMINISTRATOR).get(reverse("jobs:edit", args=[job.pk, "vms"]) + "?restart=1").content.decode()
    assert f'value="{recreated.pk}" checked> web1' in page


def test_deleting_a_job_asks_first_and_keeps_its_restore_points(client_as, setup):
    from django.utils import timezone

    client = client_as(ADMINISTRATOR)
    job = setup["job"]
    point = factories.restore_point(setup["vms"][0], setup["repo"], timezone.now(), job=job)
    assert "Delete the job" in client.get(reverse("jobs:delete", args=[job.pk])).content.decode()
    client.post(reverse("jobs:delete", args=[job.pk]))
    assert not BackupJob.objects.exists()
    point.refresh_from_db()
    assert point.job is None


def test_a_running_job_is_not_deleted_until_its_session_ends(client_as, setup):
    client = client_as(ADMINISTRATOR)
    job = setup["job"]
    running = _running_session(job)
    assert f"Session {running.pk} of this job is running" in \
        client.get(reverse("jobs:delete", args=[job.pk])).content.decode()
    response = client.post(reverse("jobs:delete", args=[job.pk]), follow=True)
    assert "cancel the session" in response.content.decode()
    assert BackupJob.objects.filter(pk=job.pk).exists()


def test_a_schedule_that_fires_while_the_last_run_still_runs_skips_this_run(setup):
    from jobs.tasks import run_scheduled_job

    job = setup["job"]
    running = _running_session(job)
    assert "skipped" in run_scheduled_job(job.pk)
    assert Session.objects.filter(job=job).count() == 1
    assert "that run was skipped" in running.log_lines.last().message


def _running_session(job):
    session = Session.objects.create(job=job, name=job.name, state=SessionState.RUNNING, progress=42.0,
                                     bytes_read=5 * 2**20)
    TaskSession.objects.create(session=session, vm_name="web1", state=SessionState.RUNNING, progress=42.0,
                               disks=[{"id": "d", "name": "web1_os", "mode": "incremental", "state": "running",
                                       "progress": 42, "bytes_done": 1, "bytes_total": 2, "size": 2,
                                       "rate": 1024, "worker": "embedded worker"}])
    session.log("small-vm1: disk web1_os handed to embedded worker.")
    return session


def test_the_session_page_polls_while_running_and_stops_when_it_ends(client_as, setup):
    client = client_as(RESTORE_OPERATOR)
    session = _running_session(setup["job"])
    page = client.get(reverse("jobs:session", args=[session.pk])).content.decode()
    assert 'hx-trigger="every 2s"' in page and "web1_os" in page and "handed to embedded worker" in page
    assert "Cancel session" not in page
    fragment = client.get(reverse("jobs:session_progress", args=[session.pk]))
    assert fragment.status_code == 200 and "42.0%" in fragment.content.decode()
    session.terminate(SessionState.SUCCESS, "1 VM(s): 1 success")
    fragment = client.get(reverse("jobs:session_progress", args=[session.pk]))
    assert fragment.status_code == 286 and "1 VM(s): 1 success" in fragment.content.decode()


def test_a_queued_session_keeps_polling(client_as, setup):
    session = Session.objects.create(job=setup["job"], name="nightly")
    client = client_as(OPERATOR)
    assert client.get(reverse("jobs:session_progress", args=[session.pk])).status_code == 200


def test_an_operator_cancels_a_running_session_from_its_page(client_as, setup):
    session = _running_session(setup["job"])
    client = client_as(OPERATOR)
    assert "Cancel session" in client.get(reverse("jobs:session", args=[session.pk])).content.decode()
    response = client.post(reverse("jobs:session_cancel", args=[session.pk]), HTTP_HX_REQUEST="true")
    assert response.status_code == 200 and "cancelling" in response.content.decode()
    assert Session.objects.get(pk=session.pk).cancel_requested


def test_session_history_filters_by_state_job_and_text(client_as, setup):
    job = setup["job"]
    other = factories.job("weekly", vms=setup["vms"][1:], repository=setup["repo"])
    failed = Session.objects.create(job=job, name="nightly", state=SessionState.FAILED)
    done = Session.objects.create(job=other, name="weekly", state=SessionState.SUCCESS)
    client = client_as(OPERATOR)

    def listed(**filters):
        page = client.get(reverse("jobs:sessions"), filters).content.decode()
        return {s.name for s in (failed, done) if f'href="{s.get_absolute_url()}">{s.name}<' in page}

    assert listed() == {"nightly", "weekly"}
    assert listed(state="failed") == {"nightly"}
    assert listed(job=other.pk) == {"weekly"}
    assert listed(q="week") == {"weekly"}


def test_session_history_sorts_and_pages(client_as, setup):
    for index in range(55):
        Session.objects.create(job=setup["job"], name=f"run-{index:02d}", state=SessionState.SUCCESS)
    client = client_as(OPERATOR)
    page = client.get(reverse("jobs:sessions"), {"sort": "name"}).content.decode()
    assert page.index(">run-00<") < page.index(">run-01<") and ">run-54<" not in page
    page = client.get(reverse("jobs:sessions"), {"sort": "name", "page": 2}).content.decode()
    assert ">run-54<" in page and ">run-00<" not in page


def test_a_restore_operator_cancels_a_restore_session_but_not_a_backup(client_as, setup):
    restore = Session.objects.create(kind="restore", name="restore web1", state=SessionState.RUNNING)
    backup = Session.objects.create(job=setup["job"], name="nightly", state=SessionState.RUNNING)
    client = client_as(RESTORE_OPERATOR)
    assert "Cancel session" in client.get(reverse("jobs:session", args=[restore.pk])).content.decode()
    assert "Cancel session" not in client.get(reverse("jobs:session", args=[backup.pk])).content.decode()
    assert client.post(reverse("jobs:session_cancel", args=[restore.pk])).status_code == 302
    assert client.post(reverse("jobs:session_cancel", args=[backup.pk])).status_code == 403
    assert Session.objects.get(pk=restore.pk).cancel_requested
    assert not Session.objects.get(pk=backup.pk).cancel_requested


def test_the_next_field_only_leads_back_into_this_site(client_as, setup):
    client = client_as(OPERATOR)
    job = setup["job"]
    away = client.post(reverse("jobs:enable", args=[job.pk]), {"enabled": "1", "next": "https://evil.example/x"})
    assert away.status_code == 302 and away.url == job.get_absolute_url()
    back = client.post(reverse("jobs:enable", args=[job.pk]), {"enabled": "1", "next": "/jobs/"})
    assert back.url == "/jobs/"
