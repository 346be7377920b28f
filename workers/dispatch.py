"""Hand disks to workers: the interface the session driver (jobs) calls.

See /work/team/jobs-workers-contract.md. The driver creates a DiskTask through
``submit_backup_disk`` / ``submit_restore_disk`` and polls the row (state,
bytes_done, bytes_total, rate, result); ``request_cancel`` asks it to stop.

Selection: a ready worker in the VM's cluster below its max tasks, least busy
first; then a worker of another cluster of the same manager; then the embedded
worker (None, queue "embedded"). A worker whose heartbeat is late is skipped
even before the scheduled check marks it unreachable. The choice and the task it
places are made under ``worker_for``, which keeps other choices for the same
manager waiting until the task is committed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Case, Count, F, Q, Value, When
from django.db.models.functions import Now
from django.utils import timezone
from django_q.tasks import async_task

from workers.choices import (
    DISK_TASK_ACTIVE_STATES,
    EMBEDDED_QUEUE,
    WORKER_SERVING_STATES,
    BackupMode,
    DiskTaskKind,
    DiskTaskState,
)
from workers.models import DiskTask, Worker

log = logging.getLogger(__name__)

RUN_DISK_TASK = "workers.tasks.run_disk_task"


def _available(manager, exclude: tuple[int, ...] = ()):
    fresh = Now() - timedelta(seconds=settings.VBR_WORKER_HEARTBEAT_TIMEOUT)  # heartbeats are the database's time
    return (Worker.objects.filter(manager=manager, state__in=WORKER_SERVING_STATES,
                                  last_heartbeat__gte=fresh)
            .exclude(pk__in=exclude)
            .annotate(active=Count("disk_tasks",
                                   filter=Q(disk_tasks__state__in=DISK_TASK_ACTIVE_STATES)))
            .filter(active__lt=F("max_tasks"))
            .order_by("active", "name"))


def choose_worker(cluster, manager, *, exclude: tuple[int, ...] = ()) -> Worker | None:
    """The worker to move a disk of a VM in ``cluster``; None means the embedded worker.

    ``exclude`` holds worker ids not to use (a worker that just failed the task).
    When the cluster has no ready worker, its stopped workers are started (they
    take later disks; this one goes elsewhere at once). To place a task on the
    worker, choose with ``worker_for``: this alone only reads.
    """
    available = _available(manager, exclude)
    if cluster is not None:
        local = available.filter(cluster=cluster).first()
        if local is not None:
            return local
        # A session needs this cluster: start its stopped workers for the disks to come.
        from workers.services import wake_workers

        wake_workers(manager, [cluster])
        return available.exclude(cluster=cluster).first()
    return available.first()


@contextmanager
def worker_for(cluster, manager, *, exclude: tuple[int, ...] = ()) -> Iterator[Worker | None]:
    """``choose_worker`` for a task to be created (or moved) inside the block.

    The manager's worker rows stay locked until the block commits. Without the
    lock, two drivers choosing at once (two sessions, or two VMs of one) both
    count the same free slot and give the worker one task more than its max
    tasks: its runner has one process per task, so the extra disk waits behind
    another one while its transfer idles towards the engine's inactivity
    timeout, and a worker with a free slot may stand idle meanwhile. Keep the
    block short: every choice for the manager waits for it.
    """
    with locked_workers(manager):
        yield choose_worker(cluster, manager, exclude=exclude)


@contextmanager
def locked_workers(manager) -> Iterator[None]:
    """Hold the manager's worker rows until the block commits.

    Meanwhile no worker of the manager is chosen for a disk (``worker_for``
    waits), and no change of a worker's state lands (heartbeats, stops, activity
    wait): what the block reads of its workers and their tasks stays true until
    it has written.
    """
    with transaction.atomic():
        # Rows locked in one order (no deadlock between choosers); NO KEY: tasks may still
        # reference them, runners may still report on their tasks.
        list(Worker.objects.select_for_update(no_key=True).filter(manager=manager)
             .order_by("pk").values_list("pk", flat=True))
        yield


def _queue_of(worker: Worker | None) -> str:
    return worker.queue if worker is not None else EMBEDDED_QUEUE


def enqueue(task: DiskTask) -> None:
    """Send the task to its runner queue once the transaction that created it commits."""
    task_id, attempt, queue = task.pk, task.attempt, task.queue
    transaction.on_commit(lambda: async_task(
        RUN_DISK_TASK, task_id, attempt, cluster=queue,
        task_name=f"disk-task-{task_id}-{attempt}", group="disk-tasks"))


def submit_backup_disk(*, session_id: int | None, manager, repository, disk, transfer_url: str,
                       mode: str = BackupMode.FULL, base_manifest_id: str | None = None,
                       worker: Worker | None = None, cluster=None) -> DiskTask:
    """Create a backup DiskTask for ``disk`` (an inventory Disk) and enqueue it.

    ``mode`` "incremental" needs ``base_manifest_id`` (the restore point whose
    index for this disk the incremental starts from) and a transfer that serves
    dirty extents.
    """
    if mode not in BackupMode.values:
        raise ValueError(f"mode {mode!r}: use one of {', '.join(BackupMode.values)}")
    if mode == BackupMode.INCREMENTAL and not base_manifest_id:
        raise ValueError("an incremental backup needs base_manifest_id (the previous restore point)")
    task = DiskTask.objects.create(
        kind=DiskTaskKind.BACKUP, session_id=session_id, worker=worker, queue=_queue_of(worker),
        manager=manager, cluster=cluster, repository=repository, disk_engine_id=disk.engine_id,
        disk_name=disk.name, disk_size=disk.provisioned_size, disk_format=disk.format or "raw",
        transfer_url=transfer_url, mode=mode, base_manifest_id=base_manifest_id or "",
    )
    enqueue(task)
    return task


def submit_restore_disk(*, session_id: int | None, manager, repository, manifest_id: str,
                        source_disk_id: str, transfer_url: str,
                        worker: Worker | None = None, cluster=None) -> DiskTask:
    """Create a restore DiskTask: disk ``source_disk_id`` of restore point ``manifest_id``
    written into the upload transfer at ``transfer_url``; enqueue it.

    ``cluster`` is the target cluster the worker was chosen for: a task sent
    again goes there too (the source disk's VM may be in another cluster)."""
    task = DiskTask.objects.create(
        kind=DiskTaskKind.RESTORE, session_id=session_id, worker=worker, queue=_queue_of(worker),
        manager=manager, cluster=cluster, repository=repository, disk_engine_id=source_disk_id,
        transfer_url=transfer_url, manifest_id=manifest_id,
    )
    enqueue(task)
    return task


def request_cancel(task: DiskTask) -> None:
    """Ask the task to stop: a pending one is cancelled at once, a running one within seconds.

    The flag goes first, on whichever active state the task is in, in one
    statement: a task that changes state meanwhile (a runner claims it, the
    liveness check moves it back to pending) keeps it, and neither a claim nor a
    move goes ahead on a flagged task. (Pending first, then running, lost the
    stop of a task moved from running to pending between the two.)
    """
    stop_tasks(DiskTask.objects.filter(pk=task.pk))
    task.refresh_from_db()


def stop_tasks(tasks) -> None:
    """``request_cancel`` for every task of the queryset ``tasks`` (a session's, say).

    A pending task is ended here, not left for a runner to end when it claims
    it: its queue may have no runner any more, and until it ends it holds a
    slot of its worker's max tasks and shows as queued.
    """
    with transaction.atomic():
        lock_tasks(tasks.filter(state__in=DISK_TASK_ACTIVE_STATES))
        tasks.filter(state__in=DISK_TASK_ACTIVE_STATES).update(cancel_requested=True)
        tasks.filter(state=DiskTaskState.PENDING, cancel_requested=True).update(
            state=DiskTaskState.CANCELLED, finished=timezone.now(), error="cancelled before it started")


def lock_tasks(tasks) -> None:
    """Lock the rows of ``tasks`` in pk order, until the transaction ends.

    Whoever writes several tasks in one transaction locks them so first: a
    stopping worker's handover (one task after another, across sessions) and a
    session's stop (one statement, in the table's scan order) would otherwise
    each hold a task the other waits for, and PostgreSQL aborts one of them.
    """
    list(tasks.select_for_update(no_key=True).order_by("pk").values_list("pk", flat=True))


class PollPace:
    """How long a session driver sleeps between two looks at its disk tasks.

    Every ``first`` seconds for the first ``quick`` looks (a small disk or a
    no-change incremental ends in a moment, and every VM pays the wait once),
    then backing off 1.5x to ``longest``; but never past the moment the nearest
    running task should end at the rate it last reported, so the driver sees a
    disk end within a poll or two instead of up to ``longest`` later.
    """

    def __init__(self, first: float = 0.02, longest: float = 0.5, quick: int = 15):
        self.first, self.longest, self.interval, self.quick = first, longest, first, quick

    def next(self, tasks: list[DiskTask]) -> float:
        if self.quick > 0:
            self.quick -= 1
        else:
            self.interval = min(self.interval * 1.5, self.longest)
        interval = self.interval
        now = timezone.now()
        ends = [(task.bytes_total - task.bytes_done) / task.rate
                - ((now - task.heartbeat).total_seconds() if task.heartbeat else 0.0)
                for task in tasks
                if task.state == DiskTaskState.RUNNING and task.rate > 0 and task.bytes_total]
        if ends:
            interval = min(interval, max(self.first, min(ends)))
        return interval


def cancel_and_wait(tasks: list[DiskTask], grace_seconds: float = 20.0, poll_seconds: float = 0.5) -> None:
    """Ask every unfinished task to stop, then give them ``grace_seconds`` to end.

    The backup and restore drivers call it when a session fails or is cancelled,
    so that no worker goes on moving a disk whose transfer is about to end.
    """
    active = [task for task in tasks if not task.is_terminal]
    for task in active:
        request_cancel(task)
    deadline = time.monotonic() + grace_seconds
    while active and time.monotonic() < deadline:
        time.sleep(poll_seconds)
        for task in active:
            task.refresh_from_db()
        active = [task for task in active if not task.is_terminal]


# A pending task no runner takes this long: its queue has no runner (say which to start).
PENDING_TIMEOUT_SECONDS = 900.0


class LivenessCheck:
    """Runs workers.services.check_workers now and then from a driver's polling loop.

    The periodic check runs on the control cluster, whose processes long sessions
    may all hold: a driver waiting on a lost worker's disk must not wait for it.
    """

    def __init__(self, every: float | None = None):
        self.every = every if every is not None else settings.VBR_WORKER_HEARTBEAT_TIMEOUT / 3
        self._next = time.monotonic() + self.every

    def __call__(self) -> None:
        if time.monotonic() >= self._next:
            from workers.services import check_workers

            check_workers()
            self._next = time.monotonic() + self.every


def _queue_busy(queue: str) -> bool:
    """A runner of the queue is alive and busy with other disks: the task waits its turn."""
    limit = Now() - timedelta(seconds=settings.VBR_WORKER_HEARTBEAT_TIMEOUT)
    return DiskTask.objects.filter(queue=queue, state=DiskTaskState.RUNNING, heartbeat__gte=limit).exists()


def not_taken(task: DiskTask, disk_name: str) -> str:
    """Why a task still pending has waited too long for a runner, or "" while it may still wait.

    Measured from when it was last queued: a task sent again after its worker
    was lost starts waiting anew, however long its first run took. A queue whose
    runner is busy with other disks (each runner takes a few at a time) isn't
    missing a runner: its tasks wait.
    """
    if task.state != DiskTaskState.PENDING:
        return ""
    waited = (timezone.now() - task.queued_since()).total_seconds()
    if waited <= PENDING_TIMEOUT_SECONDS or _queue_busy(task.queue):
        return ""
    return (f"disk {disk_name}: no worker runner took it from queue {task.queue} in {waited:.0f} s; "
            "start the worker runner (Procfile line 'worker') or a worker VM")


def resend(task: DiskTask, error: str, *, exclude: tuple[int, ...] = (), still: Q | None = None) -> bool:
    """Record the current run as failed and send the task again to another worker.

    Used when its worker was lost. True when it was sent again; False when it
    has used its attempts (VBR_DISK_TASK_ATTEMPTS: it fails), was asked to stop,
    even after ``task`` was read (it is cancelled), had read its whole disk (its
    transfer may be finalized: it fails), or no longer needs moving.
    ``still`` is the reason to move it, checked again in the statement that
    moves or ends it (a task that reported meanwhile stays). Give a reason about
    its worker as a subquery (``worker__in=``), not a join: Django makes a
    join's update "id IN (...)", whose conditions on the task row PostgreSQL
    doesn't check again against a write the update waited for.
    The conditional update on (state, attempt) means a runner that comes back
    to life can no longer write to the task: its next progress report fails.
    """
    now = timezone.now()
    history = [*task.attempts, {"attempt": task.attempt, "worker": task.worker_name,
                                "error": error, "state": DiskTaskState.FAILED,
                                "started": task.started.isoformat() if task.started else None,
                                "finished": now.isoformat()}]
    mine = DiskTask.objects.filter(still or Q(), pk=task.pk, state=task.state, attempt=task.attempt)
    # Runs that started count against the attempts; a move of a task no runner had taken yet
    # (its worker was lost while it waited) doesn't, within reason.
    runs = sum(1 for a in history if a.get("started"))
    limit = settings.VBR_DISK_TASK_ATTEMPTS
    if task.cancel_requested or runs >= limit or task.attempt >= 3 * limit:
        _end(mine, error, now, history)
        return False
    with worker_for(_cluster_of(task), task.manager, exclude=exclude) as worker:
        updated = mine.filter(cancel_requested=False, reads_finished__isnull=True).update(
            state=DiskTaskState.PENDING, attempt=task.attempt + 1, attempts=history, worker=worker,
            queue=_queue_of(worker), bytes_done=0, rate=0.0, started=None, heartbeat=None, runner="",
            error="", result={})
        if updated:
            task.refresh_from_db()
            log.warning("disk task %s: %s; sent again to the %s", task.pk, error, task.worker_name)
            enqueue(task)
            return True
    _end(mine.filter(cancel_requested=True), error, now, history)  # asked to stop since it was read
    # A backup that had read its disk: its driver may have finalized the transfer already.
    _end(mine.filter(reads_finished__isnull=False), f"{error} after it had read the whole disk; the disk's "
         "transfer may be closed already, so it can't be read again: run the backup again", now, history)
    return False


def _end(tasks, error: str, now, history: list) -> None:
    """End a lost run for good: cancelled if it was asked to stop (as the row says), else failed."""
    tasks.update(state=Case(When(cancel_requested=True, then=Value(DiskTaskState.CANCELLED)),
                            default=Value(DiskTaskState.FAILED)),
                 error=error, finished=now, attempts=history)


def _cluster_of(task: DiskTask):
    """The cluster the task's worker was chosen for; for tasks that didn't record it, the cluster
    of the disk's VM when the inventory knows it (a backup's; a restore's disk id is the source
    disk, whose VM may be in another cluster than the one restored into)."""
    from inventory.models import Disk

    if task.cluster_id:
        return task.cluster
    if task.kind == DiskTaskKind.RESTORE:
        return task.worker.cluster if task.worker_id else None
    disk = (Disk.objects.filter(manager=task.manager, engine_id=task.disk_engine_id)
            .select_related("vm__cluster").first())
    if disk is not None and disk.vm is not None:
        return disk.vm.cluster
    return task.worker.cluster if task.worker_id else None
