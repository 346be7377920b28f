"""Times written into text administrators read later (session names, log lines, reconcile actions)
are in the pages' time zone with the offset, as the pages and the commands show them."""

from datetime import UTC, datetime, timedelta

import pytest

from jobs.choices import RetentionKind, SessionKind, SessionState
from jobs.models import ReconcileAction, Session
from tests.jobs import factories

pytestmark = pytest.mark.django_db

# A zone without summer time keeps the expected text fixed; UTC would hide a missing conversion.
LOCAL_ZONE = "Asia/Kolkata"
A_MORNING = datetime(2025, 1, 15, 9, 30, 5, tzinfo=UTC)
THERE = "2025-01-15 15:00:05+05:30"


@pytest.fixture
def point(settings):
    settings.TIME_ZONE = LOCAL_ZONE
    _, _, (vm,) = factories.inventory(vm_names=("web1",))
    return factories.restore_point(vm, factories.repository(), A_MORNING)


def test_a_restore_sessions_name_says_when_its_restore_point_was_made_in_local_time(point):
    from jobs.restore.requests import DISKS, RestoreRequest

    assert RestoreRequest(point=point.pk, name="web1-copy").describe(point) == \
        f"Restore of web1 ({THERE}) as web1-copy"
    assert RestoreRequest(point=point.pk, kind=DISKS, disks=["disk-0"]).describe(point) == \
        f"Restore of web1_os (web1, {THERE})"


def test_a_full_for_want_of_a_checkpoint_says_which_restore_point_in_local_time(point):
    from jobs.driver.plan import plan_backup

    plan = plan_backup(None, point.vm, point.repository, [])  # no checkpoint: the engine isn't asked
    assert f"the last restore point ({THERE}) has no checkpoint" in plan.reason


def test_reconcile_says_when_a_dead_session_last_beat_in_local_time(settings):
    from jobs.reconcile import fail_dead_sessions

    settings.TIME_ZONE = LOCAL_ZONE
    session = Session.objects.create(name="dead", state=SessionState.RUNNING, heartbeat=A_MORNING)
    assert fail_dead_sessions() == [session.pk]
    assert f"no heartbeat since {THERE};" in ReconcileAction.objects.get(session=session).message


def test_a_restore_logs_its_restore_points_time_in_local_time(point, datamover):
    from jobs.restore.driver import run_restore_session
    from jobs.restore.requests import RestoreRequest

    point.repository.datamover_url, point.repository.token = datamover.url, datamover.token
    point.repository.save()
    session = Session.objects.create(kind=SessionKind.RESTORE, name="r", state=SessionState.RUNNING,
                                     options=RestoreRequest(point=point.pk).to_options())
    state, _ = run_restore_session(session)  # its manifest isn't in the repository: it fails there
    assert state == SessionState.FAILED
    assert f"(full, {THERE}) in repository repo1" in session.log_lines.first().message


def test_retention_logs_the_deleted_restore_points_time_in_local_time(point, datamover):
    from jobs.driver.retention import apply_job_retention

    point.repository.datamover_url, point.repository.token = datamover.url, datamover.token
    point.repository.save()
    job = factories.job(vms=[point.vm], repository=point.repository,
                        retention_kind=RetentionKind.POINTS, retain=1)
    point.job = job
    point.save()
    factories.restore_point(point.vm, point.repository, A_MORNING + timedelta(days=1), job=job)
    session = Session.objects.create(job=job, name=job.name, state=SessionState.RUNNING)
    deleted = apply_job_retention(job, session)  # its manifest was gone already: the row goes
    assert [p.manifest_id for p in deleted] == [point.manifest_id]
    assert session.log_lines.get().message == \
        f"Retention deleted restore point {point.manifest_id} of web1 ({THERE})."


def test_log_lines_and_restore_points_read_in_local_time(point):
    line = Session.objects.create(name="s").log("Backup of web1 started.")
    line.time = A_MORNING
    assert str(line) == "15:00:05+05:30 info Backup of web1 started."
    assert str(point) == f"web1 {THERE} (full)"
