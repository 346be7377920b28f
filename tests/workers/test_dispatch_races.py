"""Races between drivers, runners and the liveness check over one disk task or one worker.

Each test drives the racing order itself: a step of one party is run between two
statements of another (through a database execute wrapper), or, where only a row
lock can keep two parties apart, in two threads with their own connections.
"""

import threading
from contextlib import contextmanager
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from tests.workers import dispatching
from workers import deployment, dispatch
from workers.choices import DiskTaskState, WorkerState
from workers.models import DiskTask, Worker
from workers.services import check_workers, heartbeat, note_worker_activity, request_action
from workers.tasks import TaskMonitor, claim, finish, worker_action

# The shared fixtures (a repository with no data mover, a disk) and submit helper.
repository, disk, submit = dispatching.repository, dispatching.disk, dispatching.submit


@contextmanager
def racing(statement, step, *, before=False):
    """Run ``step`` once, right after (or before) the first statement for which
    ``statement(sql, params)`` holds."""
    fired = []

    def wrapper(execute, sql, params, many, context):
        hit = not fired and statement(sql, params)
        if hit:
            fired.append(sql)
            if before:
                step()
        result = execute(sql, params, many, context)
        if hit and not before:
            step()
        return result

    with connection.execute_wrapper(wrapper):
        yield
    assert fired, "the racing step never ran"


def update_of_tasks(sql, params=None):
    return sql.startswith("UPDATE") and '"workers_disktask"' in sql


def test_a_stop_asked_while_the_check_moves_the_task_elsewhere_is_not_lost(
        make_worker, inventory_manager, repository, disk):
    lost, _spare = make_worker("lost"), make_worker("spare")
    task = claim(submit(inventory_manager, repository, disk, lost).pk, 1)
    seen_by_check = DiskTask.objects.select_related("worker", "manager").get(pk=task.pk)
    # The session stops its disks while the liveness check sends this one to the spare worker.
    with racing(update_of_tasks, lambda: dispatch.resend(seen_by_check, "worker lost was lost",
                                                         exclude=(lost.pk,))):
        dispatch.request_cancel(task)
    assert claim(task.pk, task.attempt) is None  # the spare's runner doesn't start it
    assert DiskTask.objects.get(pk=task.pk).state == DiskTaskState.CANCELLED


def test_a_runner_taking_a_task_while_it_is_being_stopped_never_starts_it(
        inventory_manager, repository, disk):
    task = submit(inventory_manager, repository, disk, None)
    taken = []
    with racing(update_of_tasks, lambda: taken.append(claim(task.pk, task.attempt))):
        dispatch.request_cancel(task)
    assert taken == [None]
    assert task.state == DiskTaskState.CANCELLED and task.started is None


def test_a_task_asked_to_stop_after_the_check_read_it_is_ended_not_moved(
        make_worker, inventory_manager, repository, disk):
    lost, _spare = make_worker("lost"), make_worker("spare")
    task = claim(submit(inventory_manager, repository, disk, lost).pk, 1)
    # Reconcile flags the dead session's disks after the check read this row.
    DiskTask.objects.filter(pk=task.pk).update(cancel_requested=True)
    assert not dispatch.resend(task, "worker lost was lost", exclude=(lost.pk,))
    task.refresh_from_db()
    assert task.state == DiskTaskState.CANCELLED and task.worker == lost and task.attempt == 1


def test_a_worker_whose_heartbeat_arrives_while_it_is_checked_keeps_its_disks(
        make_worker, inventory_manager, repository, disk):
    late, _spare = make_worker("late"), make_worker("spare")
    task = claim(submit(inventory_manager, repository, disk, late).pk, 1)
    Worker.objects.filter(pk=late.pk).update(last_heartbeat=timezone.now() - timedelta(minutes=2))
    with racing(lambda sql, params: sql.startswith("SELECT") and '"workers_worker"' in sql,
                lambda: heartbeat(late)):
        outcome = check_workers()
    assert outcome["unreachable"] == []
    assert Worker.objects.get(pk=late.pk).state == WorkerState.READY
    task.refresh_from_db()
    assert task.state == DiskTaskState.RUNNING and task.worker == late and task.attempt == 1


def test_a_disk_that_reports_while_its_silence_is_checked_stays_with_its_runner(
        make_worker, inventory_manager, repository, disk):
    worker, _spare = make_worker("w1"), make_worker("spare")
    task = claim(submit(inventory_manager, repository, disk, worker).pk, 1)
    DiskTask.objects.filter(pk=task.pk).update(heartbeat=timezone.now() - timedelta(minutes=2))
    monitor = TaskMonitor(task)
    with racing(update_of_tasks, lambda: monitor.progress(10, 100, 1.0), before=True):
        check_workers()
    assert not monitor.should_cancel()
    task.refresh_from_db()
    assert task.state == DiskTaskState.RUNNING and task.worker == worker and task.bytes_done == 10


@pytest.mark.django_db(transaction=True)
def test_two_drivers_choosing_at_once_never_give_a_worker_more_than_its_max_tasks(
        transactional_db, make_worker, inventory_manager, repository, disk):
    if connection.vendor != "postgresql":
        pytest.skip("row locks need PostgreSQL; SQLite serialises writers by itself")
    make_worker("first", max_tasks=1), make_worker("second", max_tasks=1)
    cluster = Worker.objects.get(name="first").cluster
    first_chose, first_goes_on, second_done = threading.Event(), threading.Event(), threading.Event()
    second_pid = []

    def driver(chose=None):
        try:
            if chose is None:
                with connection.cursor() as cursor:
                    cursor.execute("SELECT pg_backend_pid()")
                    second_pid.append(cursor.fetchone()[0])
            with dispatch.worker_for(cluster, inventory_manager) as worker:
                if chose is not None:
                    chose.set()
                    first_goes_on.wait(30)
                submit(inventory_manager, repository, disk, worker)
        finally:
            connection.close()

    first = threading.Thread(target=driver, args=(first_chose,))
    first.start()
    assert first_chose.wait(30)
    second = threading.Thread(target=lambda: (driver(), second_done.set()))
    second.start()
    # The second chooses while the first has chosen but not yet made its task: it either
    # ends (nothing holds it back) or waits on the first one's lock.
    while not second_done.wait(0.01) and not _waits_on_a_lock(second_pid):
        pass
    first_goes_on.set()
    first.join(30), second.join(30)
    placed = {w.name: w.active_tasks().count() for w in Worker.objects.all()}
    assert placed == {"first": 1, "second": 1}


def _waits_on_a_lock(pids: list[int]) -> bool:
    if not pids:
        return False
    with connection.cursor() as cursor:
        cursor.execute("SELECT cardinality(pg_blocking_pids(%s)) > 0", [pids[0]])
        return cursor.fetchone()[0]


def marking_stopping(sql, params):
    return sql.startswith("UPDATE") and '"workers_worker"' in sql and WorkerState.STOPPING in (params or ())


def test_a_disk_taken_by_an_idle_worker_as_it_is_stopped_is_not_killed_mid_run(
        make_worker, inventory_manager, repository, disk, settings):
    settings.VBR_WORKER_IDLE_MINUTES = 30
    idle = make_worker("idle", idle_since=timezone.now() - timedelta(hours=1))
    make_worker("spare")
    taken = []

    def session_and_runner():  # a session hands a disk out, the worker's runner takes it
        with dispatch.worker_for(idle.cluster, inventory_manager) as worker:
            task = submit(inventory_manager, repository, disk, worker)
        taken.append(claim(task.pk, task.attempt))

    with racing(marking_stopping, session_and_runner, before=True):
        deployment.stop_idle_workers()
    task = DiskTask.objects.select_related("worker").get(pk=taken[0].pk)
    # Its run goes on where it started, and costs no attempt.
    assert task.state == DiskTaskState.RUNNING and task.attempt == 1 and task.attempts == []
    assert task.worker.state != WorkerState.STOPPED and not TaskMonitor(task).should_cancel()


def test_a_disk_its_runner_takes_as_the_worker_is_being_stopped_refuses_the_stop(
        make_worker, inventory_manager, repository, disk):
    leaving, _staying = make_worker("leaving"), make_worker("staying")
    queued = submit(inventory_manager, repository, disk, leaving)
    with racing(marking_stopping, lambda: claim(queued.pk, queued.attempt), before=True), \
            pytest.raises(deployment.DeploymentError, match="moving 1 disk"):
        deployment.stop(Worker.objects.get(pk=leaving.pk))
    queued.refresh_from_db()
    assert queued.state == DiskTaskState.RUNNING and queued.worker == leaving and queued.attempt == 1
    assert Worker.objects.get(pk=leaving.pk).state == WorkerState.BUSY


def test_a_stop_from_the_workers_page_sends_its_queued_disks_elsewhere_at_once(
        make_worker, inventory_manager, repository, disk, django_capture_on_commit_callbacks):
    leaving, staying = make_worker("leaving"), make_worker("staying")
    queued = submit(inventory_manager, repository, disk, leaving)
    # The control runner, which would shut the worker down, is busy with long sessions.
    with django_capture_on_commit_callbacks(execute=False):
        request_action(Worker.objects.get(pk=leaving.pk), "stop")
    queued.refresh_from_db()
    assert queued.worker == staying and queued.state == DiskTaskState.PENDING
    assert Worker.objects.get(pk=leaving.pk).state == WorkerState.STOPPING
    assert not heartbeat(leaving)  # its runner exits, with no disk of its own left to kill


def test_a_disk_its_runner_takes_as_a_stop_is_asked_from_the_page_refuses_the_stop(
        make_worker, inventory_manager, repository, disk, django_capture_on_commit_callbacks):
    leaving, _staying = make_worker("leaving"), make_worker("staying")
    queued = submit(inventory_manager, repository, disk, leaving)  # chosen just before the stop
    with django_capture_on_commit_callbacks(execute=False) as shutdowns, \
            racing(marking_stopping, lambda: claim(queued.pk, queued.attempt), before=True), \
            pytest.raises(deployment.DeploymentError, match="moving 1 disk"):
        request_action(Worker.objects.get(pk=leaving.pk), "stop")
    queued.refresh_from_db()
    assert queued.state == DiskTaskState.RUNNING and queued.worker == leaving and queued.attempt == 1
    assert Worker.objects.get(pk=leaving.pk).state == WorkerState.BUSY
    assert shutdowns == [] and heartbeat(leaving)  # no shutdown: its runner goes on moving the disk


def test_a_forced_stop_from_the_page_sends_its_running_disks_elsewhere_at_once(
        make_worker, inventory_manager, repository, disk, django_capture_on_commit_callbacks):
    leaving, staying = make_worker("leaving"), make_worker("staying")
    running = claim(submit(inventory_manager, repository, disk, leaving).pk, 1)
    with django_capture_on_commit_callbacks(execute=False):
        request_action(Worker.objects.get(pk=leaving.pk), "stop", force=True)
    moved = DiskTask.objects.get(pk=running.pk)
    assert moved.worker == staying and moved.state == DiskTaskState.PENDING and moved.attempt == 2
    old_run = TaskMonitor(running)
    old_run.progress(1, 10, 0.0)
    assert old_run.lost  # the old run stops at its next report, its runner leaving anyway


def test_a_stop_whose_worker_was_started_again_before_the_control_runner_got_to_it_is_skipped(
        make_worker):
    worker = make_worker("back")
    request_action(worker, "stop")
    request_action(worker, "start")
    assert worker_action(worker.pk, "stop") == "skipped"
    assert Worker.objects.get(pk=worker.pk).state == WorkerState.STARTING


def test_a_lost_worker_that_comes_back_before_its_disks_are_moved_keeps_them(
        make_worker, inventory_manager, repository, disk):
    late, _spare = make_worker("late"), make_worker("spare")
    task = claim(submit(inventory_manager, repository, disk, late).pk, 1)
    Worker.objects.filter(pk=late.pk).update(last_heartbeat=timezone.now() - timedelta(minutes=2))
    # The check has marked it unreachable and read its disks when its heartbeat arrives.
    with racing(lambda sql, params: sql.startswith("SELECT") and '"workers_disktask"' in sql,
                lambda: heartbeat(late)):
        outcome = check_workers()
    assert outcome == {"unreachable": ["late"], "tasks_moved": 0}
    assert Worker.objects.get(pk=late.pk).state == WorkerState.READY
    task.refresh_from_db()
    assert task.state == DiskTaskState.RUNNING and task.worker == late and task.attempt == 1


class Party(threading.Thread):
    """One party of a race, in a thread of its own with its own database connection."""

    def __init__(self, step):
        super().__init__()
        self.step, self.pid, self.result, self.error = step, [], None, None
        self.done = threading.Event()

    def run(self):
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                self.pid.append(cursor.fetchone()[0])
            self.result = self.step()
        except BaseException as exc:  # noqa: BLE001 - raised again in the test's thread
            self.error = exc
        finally:
            connection.close()
            self.done.set()

    def wait_blocked_or_done(self):
        """Until the party ended, or waits on a row lock another party holds."""
        for _ in range(3000):
            if self.done.wait(0.01) or _waits_on_a_lock(self.pid):
                return
        raise AssertionError("the party neither ended nor waited on a lock")

    def outcome(self):
        self.join(30)
        if self.error is not None:
            raise self.error
        return self.result


def postgres_only():
    if connection.vendor != "postgresql":
        pytest.skip("row locks need PostgreSQL; SQLite serialises writers by itself")


@pytest.mark.django_db(transaction=True)
def test_an_idle_stop_waits_for_a_choice_under_way_and_leaves_the_worker_its_disk(
        transactional_db, make_worker, inventory_manager, repository, disk, settings):
    postgres_only()
    settings.VBR_WORKER_IDLE_MINUTES = 30
    idle = make_worker("idle", idle_since=timezone.now() - timedelta(hours=1))
    make_worker("spare")
    chose, goes_on = threading.Event(), threading.Event()

    def session():
        with dispatch.worker_for(idle.cluster, inventory_manager) as worker:
            chose.set()
            goes_on.wait(30)
            return submit(inventory_manager, repository, disk, worker)

    driver = Party(session)
    driver.start()
    assert chose.wait(30)
    # The idle stop starts while the session has chosen the worker but not yet made its task.
    stopper = Party(deployment.stop_idle_workers)
    stopper.start()
    stopper.wait_blocked_or_done()
    goes_on.set()
    task = driver.outcome()
    assert stopper.outcome() == []
    task.refresh_from_db()
    assert task.worker == idle and task.state == DiskTaskState.PENDING and task.attempt == 1
    assert Worker.objects.get(pk=idle.pk).state == WorkerState.READY


@pytest.mark.django_db(transaction=True)
def test_a_worker_whose_disk_ends_as_another_starts_is_busy(
        transactional_db, make_worker, inventory_manager, repository, disk):
    postgres_only()
    worker = make_worker("w1")
    ending = claim(submit(inventory_manager, repository, disk, worker).pk, 1)
    starting = submit(inventory_manager, repository, disk, worker)
    finish(ending, DiskTaskState.SUCCEEDED, "", {})
    read, goes_on = threading.Event(), threading.Event()

    def pause_after_reading_tasks(execute, sql, params, many, context):
        result = execute(sql, params, many, context)
        if not read.is_set() and sql.startswith("SELECT") and '"workers_disktask"' in sql:
            read.set()
            goes_on.wait(30)
        return result

    def note_the_end():  # the runner that moved the ended disk: it saw none running
        with connection.execute_wrapper(pause_after_reading_tasks):
            note_worker_activity(worker.pk)

    ender = Party(note_the_end)
    ender.start()
    assert read.wait(30)
    starter = Party(lambda: (claim(starting.pk, starting.attempt), note_worker_activity(worker.pk)))
    starter.start()
    starter.wait_blocked_or_done()
    goes_on.set()
    ender.outcome(), starter.outcome()
    assert DiskTask.objects.get(pk=starting.pk).state == DiskTaskState.RUNNING
    assert Worker.objects.get(pk=worker.pk).state == WorkerState.BUSY


@pytest.mark.django_db(transaction=True)
def test_a_worker_stopped_while_a_session_of_its_disks_is_stopped_doesnt_deadlock(
        transactional_db, make_worker, inventory_manager, repository, disk):
    postgres_only()
    leaving, _staying = make_worker("leaving"), make_worker("staying")
    older, newer = (submit(inventory_manager, repository, disk, leaving) for _ in range(2))
    moved_one, goes_on = threading.Event(), threading.Event()

    def pause_after_moving_a_disk(execute, sql, params, many, context):
        result = execute(sql, params, many, context)
        if not moved_one.is_set() and update_of_tasks(sql):
            moved_one.set()
            goes_on.wait(30)
        return result

    def stop_the_worker():  # hands its queued disks over, newest first, in one transaction
        with connection.execute_wrapper(pause_after_moving_a_disk):
            deployment.begin_stop(Worker.objects.get(pk=leaving.pk))

    stopper = Party(stop_the_worker)
    stopper.start()
    assert moved_one.wait(30)
    # Reconcile stops the session of both disks (one statement) while the worker hands them over.
    reconcile = Party(lambda: dispatch.stop_tasks(DiskTask.objects.filter(session_id=7)))
    reconcile.start()
    reconcile.wait_blocked_or_done()
    goes_on.set()
    stopper.outcome(), reconcile.outcome()  # neither was aborted as a deadlock victim
    assert set(DiskTask.objects.filter(pk__in=(older.pk, newer.pk)).values_list("state", flat=True)) == {
        DiskTaskState.CANCELLED}
    assert Worker.objects.get(pk=leaving.pk).state == WorkerState.STOPPING
