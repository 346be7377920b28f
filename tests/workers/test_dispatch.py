"""Choosing workers, submitting and cancelling disk tasks, and losing workers (database only)."""

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from inventory.models import Cluster
from tests.workers import dispatching
from workers import dispatch
from workers.choices import DiskTaskState, WorkerState
from workers.models import DiskTask, Worker
from workers.services import check_workers, heartbeat

# The shared fixtures (a repository with no data mover, a disk) and submit helper.
repository, disk, submit = dispatching.repository, dispatching.disk, dispatching.submit


def test_the_least_busy_ready_worker_of_the_cluster_is_chosen(make_worker, inventory_manager,
                                                              repository, disk):
    busy, idle = make_worker("busy"), make_worker("idle")
    make_worker("stopped", state=WorkerState.STOPPED)
    make_worker("silent", beat=False)
    submit(inventory_manager, repository, disk, busy)
    cluster = busy.cluster
    assert dispatch.choose_worker(cluster, inventory_manager) == idle
    submit(inventory_manager, repository, disk, idle)
    submit(inventory_manager, repository, disk, idle)
    assert dispatch.choose_worker(cluster, inventory_manager) == busy


def test_a_worker_at_its_max_tasks_is_passed_over(make_worker, inventory_manager, repository, disk):
    full = make_worker("full", max_tasks=1)
    submit(inventory_manager, repository, disk, full)
    assert dispatch.choose_worker(full.cluster, inventory_manager) is None


def test_a_worker_of_another_cluster_comes_before_the_embedded_one(make_worker, inventory_manager):
    home = Cluster.objects.get(manager=inventory_manager, engine_id="cl-1")
    other = Cluster.objects.create(manager=inventory_manager, engine_id="cl-2", name="Other")
    away = make_worker("away", cluster=other)
    assert dispatch.choose_worker(home, inventory_manager) == away
    local = make_worker("local")
    assert dispatch.choose_worker(home, inventory_manager) == local


def test_a_submitted_task_is_enqueued_on_the_workers_queue_at_commit(
        make_worker, inventory_manager, repository, disk, django_capture_on_commit_callbacks):
    worker = make_worker("w")
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        task = submit(inventory_manager, repository, disk, worker)
    assert len(callbacks) == 1
    assert task.queue == worker.queue == "worker-w" and task.state == DiskTaskState.PENDING
    assert (task.disk_engine_id, task.disk_size) == (disk.engine_id, disk.provisioned_size)
    embedded = submit(inventory_manager, repository, disk, None)
    assert embedded.queue == "embedded" and embedded.worker_name == "embedded worker"


def test_an_incremental_without_its_base_restore_point_is_refused(inventory_manager, repository, disk):
    with pytest.raises(ValueError, match="base_manifest_id"):
        dispatch.submit_backup_disk(session_id=1, manager=inventory_manager, repository=repository,
                                    disk=disk, transfer_url="https://h/images/t", mode="incremental")


def test_cancelling_a_pending_task_ends_it_and_a_running_one_is_flagged(
        inventory_manager, repository, disk):
    pending = submit(inventory_manager, repository, disk, None)
    dispatch.request_cancel(pending)
    assert pending.state == DiskTaskState.CANCELLED and pending.finished
    running = submit(inventory_manager, repository, disk, None)
    DiskTask.objects.filter(pk=running.pk).update(state=DiskTaskState.RUNNING)
    dispatch.request_cancel(running)
    assert running.state == DiskTaskState.RUNNING and running.cancel_requested


def test_a_silent_worker_turns_unreachable_and_its_tasks_go_elsewhere(
        make_worker, inventory_manager, repository, disk):
    lost, spare = make_worker("lost"), make_worker("spare")
    running = submit(inventory_manager, repository, disk, lost)
    pending = submit(inventory_manager, repository, disk, lost)
    DiskTask.objects.filter(pk=running.pk).update(state=DiskTaskState.RUNNING,
                                                  started=timezone.now(), bytes_done=123)
    Worker.objects.filter(pk=lost.pk).update(last_heartbeat=timezone.now() - timedelta(hours=1))
    outcome = check_workers()
    assert outcome == {"unreachable": ["lost"], "tasks_moved": 2}
    lost.refresh_from_db()
    assert lost.state == WorkerState.UNREACHABLE and "stopped answering" in lost.last_error
    for task in (running, pending):
        task.refresh_from_db()
        assert task.state == DiskTaskState.PENDING and task.worker == spare and task.attempt == 2
        assert task.attempts[0]["worker"] == "lost" and task.bytes_done == 0
    assert check_workers() == {"unreachable": [], "tasks_moved": 0}


def test_the_check_counts_as_moved_only_the_disks_it_sent_elsewhere(
        make_worker, inventory_manager, repository, disk, settings):
    settings.VBR_DISK_TASK_ATTEMPTS = 1
    lost, _spare = make_worker("lost"), make_worker("spare")
    spent, stopped, queued = (submit(inventory_manager, repository, disk, lost) for _ in range(3))
    now = timezone.now()
    DiskTask.objects.filter(pk__in=[spent.pk, stopped.pk]).update(state=DiskTaskState.RUNNING,
                                                                  started=now, heartbeat=now)
    DiskTask.objects.filter(pk=stopped.pk).update(cancel_requested=True)
    Worker.objects.filter(pk=lost.pk).update(last_heartbeat=now - timedelta(hours=1))
    assert check_workers() == {"unreachable": ["lost"], "tasks_moved": 1}
    assert dict(DiskTask.objects.values_list("pk", "state")) == {
        spent.pk: DiskTaskState.FAILED, stopped.pk: DiskTaskState.CANCELLED,
        queued.pk: DiskTaskState.PENDING}


def test_a_lost_workers_error_says_when_it_last_beat_in_the_pages_time_zone(make_worker, settings):
    settings.TIME_ZONE = "Asia/Kolkata"  # the pages' zone; UTC would hide a missing conversion
    lost = make_worker("lost")
    Worker.objects.filter(pk=lost.pk).update(last_heartbeat=datetime(2025, 1, 15, 9, 30, 5, tzinfo=UTC))
    check_workers()
    lost.refresh_from_db()
    assert lost.last_error == "worker lost stopped answering (last heartbeat: 2025-01-15 15:00:05+05:30)"


def test_a_task_sent_elsewhere_waits_for_a_runner_anew_however_long_it_ran_before(
        make_worker, inventory_manager, repository, disk):
    lost, spare = make_worker("lost"), make_worker("spare")
    task = submit(inventory_manager, repository, disk, lost)
    an_hour_ago = timezone.now() - timedelta(hours=1)
    DiskTask.objects.filter(pk=task.pk).update(created=an_hour_ago, state=DiskTaskState.RUNNING,
                                               started=an_hour_ago)
    task.refresh_from_db()
    assert dispatch.resend(task, "its worker stopped answering")
    assert dispatch.not_taken(task, "web1_os") == ""  # queued again just now
    DiskTask.objects.filter(pk=task.pk).update(state=DiskTaskState.PENDING)
    never_taken = submit(inventory_manager, repository, disk, spare)
    DiskTask.objects.filter(pk=never_taken.pk).update(created=an_hour_ago)
    never_taken.refresh_from_db()
    assert "no worker runner took it from queue" in dispatch.not_taken(never_taken, "web1_os")


def test_a_task_fails_for_good_after_its_last_attempt(make_worker, inventory_manager, repository,
                                                      disk, settings):
    settings.VBR_DISK_TASK_ATTEMPTS = 1
    lost = make_worker("lost")
    task = submit(inventory_manager, repository, disk, lost)
    DiskTask.objects.filter(pk=task.pk).update(state=DiskTaskState.RUNNING, started=timezone.now())
    Worker.objects.filter(pk=lost.pk).update(last_heartbeat=timezone.now() - timedelta(hours=1))
    check_workers()
    task.refresh_from_db()
    assert task.state == DiskTaskState.FAILED and "lost" in task.error and task.finished


def test_moving_a_task_no_runner_had_taken_yet_uses_up_no_attempt(make_worker, inventory_manager,
                                                                  repository, disk, settings):
    settings.VBR_DISK_TASK_ATTEMPTS = 1
    first = make_worker("first")
    make_worker("second"), make_worker("third")  # where it goes next
    task = submit(inventory_manager, repository, disk, first)
    assert dispatch.resend(task, "worker first was lost", exclude=(first.pk,))  # it waited, never ran
    assert dispatch.resend(task, "worker second was lost", exclude=(task.worker_id,))
    task.refresh_from_db()
    assert task.state == DiskTaskState.PENDING and task.attempt == 3


def test_a_backup_lost_after_reading_its_disk_fails_instead_of_reading_a_finalized_transfer(
        make_worker, inventory_manager, repository, disk):
    lost, _spare = make_worker("lost"), make_worker("spare")
    task = submit(inventory_manager, repository, disk, lost)
    DiskTask.objects.filter(pk=task.pk).update(state=DiskTaskState.RUNNING, started=timezone.now(),
                                               reads_finished=timezone.now())
    task.refresh_from_db()
    assert not dispatch.resend(task, "worker lost was lost", exclude=(lost.pk,))
    task.refresh_from_db()
    assert task.state == DiskTaskState.FAILED and task.worker == lost and task.attempt == 1
    assert "after it had read the whole disk" in task.error and "run the backup again" in task.error


def test_a_heartbeat_makes_a_starting_worker_ready_and_brings_back_a_lost_one(make_worker):
    starting = make_worker("starting", state=WorkerState.STARTING, beat=False)
    assert heartbeat(starting, version="1.2.3", runner_host="vm1")
    starting.refresh_from_db()
    assert starting.state == WorkerState.READY and starting.software_version == "1.2.3"
    lost = make_worker("lost", state=WorkerState.UNREACHABLE)
    assert heartbeat(lost)
    lost.refresh_from_db()
    assert lost.state == WorkerState.READY
    stopped = make_worker("stopped", state=WorkerState.STOPPED)
    assert not heartbeat(stopped)  # the runner of a stopped worker exits


def test_a_runner_ends_a_pending_task_that_was_asked_to_stop(inventory_manager, repository, disk):
    from workers.tasks import run_disk_task

    task = submit(inventory_manager, repository, disk, None)
    DiskTask.objects.filter(pk=task.pk).update(cancel_requested=True)
    assert run_disk_task(task.pk, task.attempt) == "skipped"
    task.refresh_from_db()
    assert task.state == DiskTaskState.CANCELLED and task.started is None


def test_a_runner_whose_task_was_sent_elsewhere_stops_reporting(make_worker, inventory_manager,
                                                                repository, disk):
    from workers.tasks import TaskMonitor, claim

    lost, spare = make_worker("lost"), make_worker("spare")
    task = claim(submit(inventory_manager, repository, disk, lost).pk, 1)
    monitor = TaskMonitor(task)
    monitor.progress(10, 100, 5.0)
    assert not monitor.should_cancel()
    assert DiskTask.objects.get(pk=task.pk).bytes_done == 10
    dispatch.resend(task, "worker lost", exclude=(lost.pk,))
    monitor.progress(20, 100, 5.0)
    assert monitor.should_cancel()
    task.refresh_from_db()
    assert task.worker == spare and task.bytes_done == 0 and task.state == DiskTaskState.PENDING


def test_a_cluster_without_a_ready_worker_gets_its_stopped_workers_started(
        make_worker, inventory_manager, django_capture_on_commit_callbacks):
    sleeping = make_worker("sleeping", state=WorkerState.STOPPED)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert dispatch.choose_worker(sleeping.cluster, inventory_manager) is None
    sleeping.refresh_from_db()
    assert sleeping.state == WorkerState.STARTING and len(callbacks) == 1


def test_schedules_are_created_once_by_name(db):
    from django_q.models import Schedule

    from workers.schedules import CHECK_SCHEDULE_NAME, IDLE_SCHEDULE_NAME, ensure_schedules

    ensure_schedules()
    ensure_schedules()
    names = set(Schedule.objects.values_list("name", flat=True))
    assert {CHECK_SCHEDULE_NAME, IDLE_SCHEDULE_NAME} <= names
    assert Schedule.objects.filter(name=CHECK_SCHEDULE_NAME).get().func == "workers.tasks.check_workers"


def test_idle_workers_are_stopped_after_the_idle_time(make_worker, settings):
    from workers import deployment

    settings.VBR_WORKER_IDLE_MINUTES = 30
    make_worker("idle", idle_since=timezone.now() - timedelta(hours=1))  # no VM: no engine call
    make_worker("fresh", idle_since=timezone.now())
    assert deployment.stop_idle_workers() == ["idle"]
    assert dict(Worker.objects.values_list("name", "state")) == {"idle": WorkerState.STOPPED,
                                                                 "fresh": WorkerState.READY}


def test_the_launcher_setting_is_checked(settings):
    from workers.checks import check_heartbeats, check_launcher

    settings.VBR_WORKER_LAUNCHER = "ssh"
    assert [m.id for m in check_launcher(None)] == ["workers.E001"]
    settings.VBR_WORKER_LAUNCHER = "cloud-init"
    settings.REDIS_URL = ""
    assert [m.id for m in check_launcher(None)] == ["workers.W001"]
    settings.VBR_WORKER_HEARTBEAT_TIMEOUT = 5
    assert [m.id for m in check_heartbeats(None)] == ["workers.E002"]


def test_finished_tasks_are_purged_after_the_keep_days(inventory_manager, repository, disk):
    from workers.services import purge_finished_tasks

    old, recent, running = (submit(inventory_manager, repository, disk, None) for _ in range(3))
    now = timezone.now()
    DiskTask.objects.filter(pk=old.pk).update(state=DiskTaskState.SUCCEEDED,
                                              finished=now - timedelta(days=30))
    DiskTask.objects.filter(pk=recent.pk).update(state=DiskTaskState.FAILED, finished=now)
    DiskTask.objects.filter(pk=running.pk).update(state=DiskTaskState.RUNNING)
    assert purge_finished_tasks() == 1
    assert set(DiskTask.objects.values_list("pk", flat=True)) == {recent.pk, running.pk}


def test_stopping_a_worker_hands_its_queued_disks_to_another(make_worker, inventory_manager,
                                                             repository, disk):
    from workers import deployment

    leaving, staying = make_worker("leaving"), make_worker("staying")  # no VM: no engine call
    queued = submit(inventory_manager, repository, disk, leaving)
    deployment.stop(Worker.objects.get(pk=leaving.pk))
    queued.refresh_from_db()
    assert queued.worker == staying and queued.state == DiskTaskState.PENDING
    assert queued.attempts[0]["error"] == "worker leaving was stopped"
    assert Worker.objects.get(pk=leaving.pk).state == WorkerState.STOPPED


def test_the_poll_pace_is_quick_for_a_moment_then_backs_off_but_not_past_a_tasks_end():
    pace = dispatch.PollPace(first=0.02, longest=0.5, quick=15)
    pauses = [pace.next([]) for _ in range(30)]
    assert pauses[:15] == [0.02] * 15
    assert pauses[15] == pytest.approx(0.03)
    assert max(pauses) == 0.5 and pauses[-1] == 0.5
    # A running task that should end in 0.1 s at its reported rate: look then, not 0.5 s later.
    task = DiskTask(state=DiskTaskState.RUNNING, bytes_total=100, bytes_done=90, rate=100.0,
                    heartbeat=timezone.now())
    assert 0.02 <= pace.next([task]) <= 0.1


def test_a_running_task_whose_own_heartbeat_stopped_is_sent_again_whatever_its_worker(
        make_worker, inventory_manager, repository, disk):
    # The worker's runner still beats: only the process moving this disk died.
    worker = make_worker("w1")
    make_worker("spare")
    task = submit(inventory_manager, repository, disk, worker)
    DiskTask.objects.filter(pk=task.pk).update(state=DiskTaskState.RUNNING, started=timezone.now(),
                                               heartbeat=timezone.now() - timedelta(hours=1))
    assert check_workers()["tasks_moved"] == 1
    task.refresh_from_db()
    assert task.state == DiskTaskState.PENDING and task.attempt == 2
    assert "its runner stopped reporting on this disk" in task.attempts[0]["error"]


def test_a_task_waiting_behind_a_busy_runner_is_not_called_untaken(make_worker, inventory_manager,
                                                                   repository, disk):
    worker = make_worker("w1")
    busy = submit(inventory_manager, repository, disk, worker)
    DiskTask.objects.filter(pk=busy.pk).update(state=DiskTaskState.RUNNING, heartbeat=timezone.now())
    waiting = submit(inventory_manager, repository, disk, worker)
    DiskTask.objects.filter(pk=waiting.pk).update(created=timezone.now() - timedelta(hours=1))
    waiting.refresh_from_db()
    assert dispatch.not_taken(waiting, "web1_data") == ""  # its runner works on another disk
    DiskTask.objects.filter(pk=busy.pk).update(heartbeat=timezone.now() - timedelta(hours=1))
    assert "no worker runner took it" in dispatch.not_taken(waiting, "web1_data")


def test_a_restore_disk_whose_worker_is_lost_goes_to_a_worker_of_the_cluster_restored_into(
        make_worker, inventory_manager, repository, disk, remote_cluster):
    # The source disk's VM is in Cluster1; the restore writes into a VM of cluster Remote.
    lost = make_worker("lost", cluster=remote_cluster)
    make_worker("source-side")
    there = make_worker("there", cluster=remote_cluster)
    with dispatch.worker_for(remote_cluster, inventory_manager) as worker:
        assert worker == lost
        task = dispatch.submit_restore_disk(
            session_id=7, manager=inventory_manager, repository=repository, manifest_id="m1",
            source_disk_id=disk.engine_id, transfer_url="https://host1:54322/images/t",
            worker=worker, cluster=remote_cluster)
    assert dispatch.resend(task, "worker lost was lost", exclude=(lost.pk,))
    task.refresh_from_db()
    assert task.worker == there


def _handed_over_before_its_transfer_opened(manager, repository, disk):
    from workers.tasks import claim

    task = dispatch.submit_backup_disk(session_id=7, manager=manager, repository=repository, disk=disk,
                                       transfer_url="", worker=None)
    return claim(task.pk, task.attempt)


def test_a_backup_task_handed_over_before_its_transfer_opened_takes_the_url_once_written(
        inventory_manager, repository, disk):
    from workers.tasks import TaskMonitor, _transfer_url

    class TheEngineOpensItMeanwhile(TaskMonitor):
        def should_cancel(self):
            DiskTask.objects.filter(pk=self.pk).update(transfer_url="https://host1:54322/images/t")
            return super().should_cancel()

    task = _handed_over_before_its_transfer_opened(inventory_manager, repository, disk)
    assert _transfer_url(task, TheEngineOpensItMeanwhile(task)) == "https://host1:54322/images/t"


def test_a_backup_task_stopped_while_its_transfer_opens_ends_there(inventory_manager, repository, disk):
    from workers.runtime import Cancelled
    from workers.tasks import TaskMonitor, _transfer_url

    task = _handed_over_before_its_transfer_opened(inventory_manager, repository, disk)
    DiskTask.objects.filter(pk=task.pk).update(cancel_requested=True)
    with pytest.raises(Cancelled, match="before the disk's transfer was open"):
        _transfer_url(task, TaskMonitor(task))
