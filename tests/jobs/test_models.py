"""Job rules, schedules kept in step with jobs, session lifecycle and the worst-state rule."""

from datetime import datetime, time, timedelta
from unittest import mock

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone
from django_q.models import Schedule

from jobs.choices import ActiveFullKind, ScheduleKind, SessionState, VmSelection, worst_state
from jobs.models import BackupJob, RestorePoint, Session, VmLock
from jobs.schedules import RECONCILE_SCHEDULE_NAME, ensure_schedules
from jobs.scheduling import cron_error, schedule_name
from tests.jobs import factories

pytestmark = pytest.mark.django_db


def test_the_session_ends_in_the_worst_state_of_its_vms():
    assert worst_state([SessionState.SUCCESS, SessionState.WARNING]) == SessionState.WARNING
    assert worst_state([SessionState.WARNING, SessionState.FAILED, SessionState.CANCELLED]) == SessionState.FAILED
    assert worst_state([SessionState.SUCCESS, SessionState.CANCELLED]) == SessionState.CANCELLED
    assert worst_state([]) == SessionState.SUCCESS


@pytest.mark.parametrize(("kind", "fields", "cron"), [
    (ScheduleKind.DAILY, {"schedule_time": time(22, 30)}, "30 22 * * *"),
    (ScheduleKind.WEEKDAYS, {"schedule_time": time(1, 5), "schedule_weekdays": [0, 6]}, "5 1 * * 1,0"),
    (ScheduleKind.MONTHLY, {"schedule_time": time(3, 0), "schedule_day": 15}, "0 3 15 * *"),
    (ScheduleKind.CRON, {"schedule_cron": "*/15 * * * 1-5"}, "*/15 * * * 1-5"),
])
def test_each_schedule_becomes_a_cron_schedule_row(kind, fields, cron):
    job = factories.job(schedule_kind=kind, **fields)
    row = Schedule.objects.get(name=schedule_name(job.pk))
    assert row.cron == cron and row.func == "jobs.tasks.run_scheduled_job" and row.cluster == "control"
    assert job.next_run() == row.next_run and row.next_run > timezone.now()


def test_the_schedule_row_follows_the_job_changes_and_goes_with_it():
    job = factories.job(schedule_kind=ScheduleKind.DAILY, schedule_time=time(22, 0))
    job.schedule_time = time(23, 15)
    job.save()
    assert Schedule.objects.get(name=schedule_name(job.pk)).cron == "15 23 * * *"
    job.schedule_kind = ScheduleKind.MANUAL
    job.save()
    assert not Schedule.objects.filter(name=schedule_name(job.pk)).exists()
    job.schedule_kind = ScheduleKind.DAILY
    job.save()
    job.delete()
    assert not Schedule.objects.filter(name__startswith="jobs: backup job").exists()


def test_ensure_schedules_is_idempotent():
    ensure_schedules()
    ensure_schedules()
    assert Schedule.objects.filter(name=RECONCILE_SCHEDULE_NAME).count() == 1


@pytest.mark.parametrize(("fields", "field"), [
    ({"selection": VmSelection.TAG}, "tag"),
    ({"selection": VmSelection.CLUSTER}, "cluster"),
    ({"schedule_kind": ScheduleKind.DAILY}, "schedule_time"),
    ({"schedule_kind": ScheduleKind.MONTHLY, "schedule_time": time(1, 0), "schedule_day": 31}, "schedule_day"),
    ({"schedule_kind": ScheduleKind.CRON, "schedule_cron": "61 * * * *"}, "schedule_cron"),
    ({"active_full_kind": ActiveFullKind.EVERY_DAYS}, "active_full_days"),
    ({"retain": 0}, "retain"),
    ({"schedule_kind": ScheduleKind.CRON, "schedule_cron": "0 0 31 2 *"}, "schedule_cron"),
])
def test_a_job_that_cannot_work_is_refused_at_the_field(fields, field):
    job = BackupJob(name="x", repository=factories.repository(), **fields)
    with pytest.raises(ValidationError) as caught:
        job.clean()
    assert field in caught.value.message_dict


def test_cron_errors_say_what_to_write():
    assert "five fields" in cron_error("daily")
    assert "never fires" in cron_error("0 0 31 2 *")
    assert cron_error("0 22 * * 1-5") == ""


def test_a_number_the_form_already_refused_is_not_checked_again():
    # The wizard's fields reject an empty or out-of-range number first; clean() must not crash on None.
    job = BackupJob(name="x", repository=factories.repository(), retain=None, parallel_vms=None)
    job.clean()


def test_an_active_full_is_due_every_n_days_or_on_weekdays():
    job = factories.job(active_full_kind=ActiveFullKind.EVERY_DAYS, active_full_days=7)
    now = timezone.now()
    assert job.active_full_due(now - timedelta(days=8), now)
    assert not job.active_full_due(now - timedelta(days=2), now)
    job.active_full_kind, job.active_full_weekdays = ActiveFullKind.WEEKDAYS, [5]
    saturday = timezone.make_aware(datetime(2026, 11, 28, 22, 0))
    assert "Sat" in job.active_full_due(saturday - timedelta(days=1), saturday)
    assert not job.active_full_due(saturday, saturday)
    assert not job.active_full_due(saturday - timedelta(days=1), saturday - timedelta(days=1))


def test_every_n_days_counts_calendar_days_from_the_last_full():
    job = factories.job(active_full_kind=ActiveFullKind.EVERY_DAYS, active_full_days=7)
    full_ended = timezone.make_aware(datetime(2026, 11, 1, 22, 40))
    run_at = timezone.make_aware(datetime(2026, 11, 8, 22, 0))  # 6 days 23 h later: the 7th day's run
    assert job.active_full_due(full_ended, run_at)
    assert not job.active_full_due(full_ended, run_at - timedelta(days=1))


def test_an_active_full_stays_due_after_retention_deleted_the_last_full():
    from jobs.choices import BackupType
    from jobs.driver.backup_session import last_full_of

    _, _, (vm,) = factories.inventory(vm_names=("web1",))
    repo = factories.repository()
    job = factories.job(repository=repo, vms=[vm], active_full_kind=ActiveFullKind.EVERY_DAYS, active_full_days=30)
    long_ago = timezone.now() - timedelta(days=40)
    session = Session.objects.create(job=job, name=job.name)
    session.tasks.create(vm=vm, vm_name=vm.name, mode=BackupType.FULL, state=SessionState.SUCCESS, started=long_ago)
    factories.restore_point(vm, repo, timezone.now() - timedelta(days=1), type=BackupType.INCREMENTAL)
    assert last_full_of(vm, repo) == long_ago  # its restore point is gone; the session remembers
    assert job.active_full_due(last_full_of(vm, repo))
    recent = factories.restore_point(vm, repo, timezone.now() - timedelta(days=2), type=BackupType.FULL)
    assert last_full_of(vm, repo) == recent.time


def test_a_job_resolves_its_vms_at_each_run():
    manager, cluster, vms = factories.inventory(vm_names=("web1", "db1", "old"))
    vms[2].removed = True
    vms[2].save()
    by_tag = factories.job("by-tag", selection=VmSelection.TAG, tag="production")
    by_cluster = factories.job("by-cluster", selection=VmSelection.CLUSTER, cluster=cluster)
    assert [vm.name for vm in by_tag.resolve_vms()] == ["web1"]
    assert [vm.name for vm in by_cluster.resolve_vms()] == ["db1", "web1"]
    vms[1].tags = ["production"]
    vms[1].save()
    assert [vm.name for vm in by_tag.resolve_vms()] == ["db1", "web1"]


def test_a_session_is_claimed_once_and_ends_once():
    session = Session.objects.create(name="s")
    assert session.start()
    assert not Session.objects.get(pk=session.pk).start()
    assert session.terminate(SessionState.SUCCESS)
    assert not session.terminate(SessionState.FAILED)
    assert Session.objects.get(pk=session.pk).state == SessionState.SUCCESS


def test_cancelling_a_queued_session_ends_it_at_once_and_a_running_one_by_flag():
    queued = Session.objects.create(name="q")
    assert queued.request_cancel() and queued.state == SessionState.CANCELLED
    running = Session.objects.create(name="r")
    running.start()
    assert running.request_cancel() and running.state == SessionState.RUNNING and running.cancel_requested
    assert running.beat() is True
    running.terminate(SessionState.CANCELLED)
    assert not running.request_cancel()


def test_a_vm_is_held_by_one_session_at_a_time():
    _, _, vms = factories.inventory()
    first, second = Session.objects.create(name="a"), Session.objects.create(name="b")
    assert VmLock.acquire(vms[0], first) is None
    assert VmLock.acquire(vms[0], second) == first
    VmLock.release(vms[0], first)
    assert VmLock.acquire(vms[0], second) is None


def test_a_lock_released_while_another_session_looks_for_its_holder_is_taken_not_assumed():
    from unittest import mock

    _, _, vms = factories.inventory()
    first = Session.objects.create(name="first", state="running")
    second = Session.objects.create(name="second", state="running")
    VmLock.acquire(vms[0], first)
    real_filter, looked = VmLock.objects.filter, []

    def holder_lets_go_meanwhile(**lookup):
        if not looked:
            looked.append(lookup)
            VmLock.release(vms[0], first)
            return VmLock.objects.none()
        return real_filter(**lookup)

    with mock.patch.object(VmLock.objects, "filter", side_effect=holder_lets_go_meanwhile):
        assert VmLock.acquire(vms[0], second) is None
    assert VmLock.objects.get(vm=vms[0]).session == second  # "None" means held by us, for real


def test_the_jobs_address_hears_how_a_session_ended(mailoutbox):
    from jobs.models import TaskSession
    from jobs.notifications import notify_session_end

    job = factories.job(notification_address="ops@example.com")
    session = Session.objects.create(job=job, name=job.name, state=SessionState.FAILED, summary="1 VM(s): 1 failed")
    TaskSession.objects.create(session=session, vm_name="web1", state=SessionState.FAILED, error="disk web1_os: boom")
    assert notify_session_end(session)
    assert mailoutbox[0].to == ["ops@example.com"] and "Failed" in mailoutbox[0].subject
    assert "web1: failed — disk web1_os: boom" in mailoutbox[0].body
    job.notification_address = ""
    job.save()
    session.refresh_from_db()
    assert not notify_session_end(session)


def test_reconcile_fails_only_sessions_whose_heartbeat_stopped():
    from jobs.choices import ReconcileKind
    from jobs.models import ReconcileAction, TaskSession
    from jobs.reconcile import fail_dead_sessions, release_orphan_locks

    _, _, vms = factories.inventory()
    now = timezone.now()
    dead = Session.objects.create(name="dead", state=SessionState.RUNNING, heartbeat=now - timedelta(minutes=5))
    alive = Session.objects.create(name="alive", state=SessionState.RUNNING, heartbeat=now)
    TaskSession.objects.create(session=dead, vm=vms[0], vm_name="web1", state=SessionState.RUNNING)
    VmLock.objects.create(vm=vms[0], session=dead)
    ended = Session.objects.create(name="ended", state=SessionState.SUCCESS)
    VmLock.objects.create(vm=vms[1], session=ended)

    assert fail_dead_sessions(stale_seconds=60) == [dead.pk]
    assert Session.objects.get(pk=dead.pk).state == SessionState.FAILED
    assert Session.objects.get(pk=alive.pk).state == SessionState.RUNNING
    assert TaskSession.objects.get(session=dead).state == SessionState.FAILED
    assert "driver died" in dead.log_lines.last().message
    assert release_orphan_locks() == 1 and not VmLock.objects.exists()
    assert set(ReconcileAction.objects.values_list("kind", flat=True)) == {
        ReconcileKind.SESSION_FAILED, ReconcileKind.LOCK_RELEASED}
    assert fail_dead_sessions(stale_seconds=60) == []


def test_the_vm_count_matches_the_vms_resolved():
    manager, cluster, vms = factories.inventory(vm_names=("web1", "db1", "old"))
    vms[2].removed = True
    vms[2].save()
    jobs = [factories.job("by-tag", selection=VmSelection.TAG, tag="production"),
            factories.job("by-cluster", selection=VmSelection.CLUSTER, cluster=cluster),
            factories.job("chosen", vms=vms)]
    assert [job.vm_count() for job in jobs] == [len(job.resolve_vms()) for job in jobs] == [1, 2, 2]


def test_session_progress_weighs_each_vm_by_the_bytes_it_has_to_move():
    from jobs.driver.heartbeat import session_figures

    session = Session.objects.create(name="weighted", state=SessionState.RUNNING)
    GiB = 2**30
    # A small VM done, a large one a quarter through, one not started yet.
    session.tasks.create(vm_name="small", state=SessionState.SUCCESS, bytes_total=1 * GiB, progress=100)
    session.tasks.create(vm_name="large", state=SessionState.RUNNING, bytes_total=7 * GiB, progress=25)
    session.tasks.create(vm_name="next", state=SessionState.PENDING)
    figures = session_figures(session.pk)
    # Weights 1, 7 and 4 (the average of the known): (100 + 175 + 0) / 12, not (100 + 25 + 0) / 3.
    assert figures["progress"] == pytest.approx(22.9, abs=0.05)
    assert figures["bytes_total"] == 8 * GiB
    session.tasks.update(bytes_total=0)
    assert session_figures(session.pk)["progress"] == pytest.approx(41.7, abs=0.05)  # no sizes yet: equal


def test_gfs_months_begin_at_local_midnight(settings, datamover):
    from jobs.choices import RetentionKind
    from jobs.driver.retention import apply_job_retention

    settings.TIME_ZONE = "Europe/Berlin"
    _, _, (vm,) = factories.inventory(vm_names=("web1",))
    repo = factories.repository()
    repo.datamover_url, repo.token = datamover.url, datamover.token  # a doomed point would go
    repo.save()
    job = factories.job(vms=[vm], repository=repo, retention_kind=RetentionKind.POINTS, retain=1, gfs_monthly=2)
    utc = timezone.get_fixed_timezone(0)
    october = factories.restore_point(vm, repo, datetime(2026, 10, 31, 10, 0, tzinfo=utc), job=job)
    # 23:30 UTC on 31 October is 00:30 on 1 November in Berlin: November's restore point.
    factories.restore_point(vm, repo, datetime(2026, 10, 31, 23, 30, tzinfo=utc), job=job)
    assert apply_job_retention(job) == []
    assert RestorePoint.objects.filter(pk=october.pk).exists()


def test_a_verification_marks_damaged_restore_points_and_they_no_longer_protect_or_serve_as_base():
    from jobs.choices import BackupType, RestorePointState, SessionKind
    from jobs.driver.plan import last_restore_point
    from jobs.protection import protection_for_vms
    from repositories.models import Repository
    from repositories.signals import repository_verified

    _, _, (vm,) = factories.inventory(vm_names=("web1",))
    repo = factories.repository()
    older = factories.restore_point(vm, repo, timezone.now() - timedelta(days=1), type=BackupType.FULL)
    newer = factories.restore_point(vm, repo, timezone.now(), type=BackupType.INCREMENTAL)
    repository_verified.send(sender=Repository, repository=repo, report={"affected_manifests": [newer.manifest_id]})
    newer.refresh_from_db()
    assert newer.state == RestorePointState.CORRUPTED
    assert last_restore_point(vm, repo) == older  # the next incremental builds on the intact one
    assert protection_for_vms([vm])[vm.pk]["last_restore_point"] == older.pk
    repository_verified.send(sender=Repository, repository=repo, report={"affected_manifests": []})
    newer.refresh_from_db()
    assert newer.state == RestorePointState.OK  # repaired (or a false alarm): ok again

    # A restore's outcome is not the VM's last backup.
    restore = Session.objects.create(name="restore", kind=SessionKind.RESTORE)
    restore.tasks.create(vm=vm, vm_name=vm.name, state=SessionState.FAILED, finished=timezone.now())
    assert protection_for_vms([vm])[vm.pk]["state"] == "ok"


def test_a_job_by_tag_finds_vms_whose_tag_is_not_ascii():
    _, _, vms = factories.inventory(vm_names=("web1",), tags=("été",))
    job = factories.job(selection=VmSelection.TAG, tag="été")
    assert [vm.name for vm in job.resolve_vms()] == ["web1"]


def test_a_vm_chosen_by_name_that_left_the_engine_is_said_not_skipped_silently():
    from jobs.driver.backup_session import run_backup
    from jobs.driver.context import SessionRun

    _, _, (vm,) = factories.inventory(vm_names=("web1",))
    job = factories.job(vms=[vm])
    vm.removed = True  # deleted in the engine, or re-created with a new id by an in-place restore
    vm.save()
    session = Session.objects.create(job=job, name=job.name, state=SessionState.RUNNING)
    state, _ = run_backup(SessionRun(session))
    assert state == SessionState.WARNING
    assert "VM web1, chosen in this job, is gone from the engine" in session.log_lines.first().message


def test_a_full_that_was_planned_but_skipped_is_not_the_last_full():
    from jobs.choices import BackupType
    from jobs.driver.backup_session import last_full_of

    _, _, (vm,) = factories.inventory(vm_names=("web1",))
    repo = factories.repository()
    job = factories.job(repository=repo, vms=[vm])
    session = Session.objects.create(job=job, name=job.name)
    session.tasks.create(vm=vm, vm_name=vm.name, mode=BackupType.FULL, state=SessionState.WARNING,
                         error="already in a backup", started=timezone.now())
    assert last_full_of(vm, repo) is None


def test_a_session_stuck_in_the_queue_doesnt_hold_the_schedule_back():
    from jobs.tasks import run_scheduled_job

    job = factories.job()
    stuck = Session.objects.create(job=job, name=job.name)  # its task was lost: pending for good
    Session.objects.filter(pk=stuck.pk).update(created=timezone.now() - timedelta(hours=1))
    with mock.patch("jobs.tasks.run_session", return_value="success") as run:
        run_scheduled_job(job.pk)
    assert run.called and Session.objects.filter(job=job).count() == 2
