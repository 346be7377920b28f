"""django-q2 tasks of the workers app: thin wrappers that load rows and call the movers.

``run_disk_task`` runs on a worker runner (queue = the worker's queue, or
"embedded"); the others run on the control runner from schedules.
"""

from __future__ import annotations

import logging
import os
import socket
import time

from django.conf import settings
from django.db.models import Value
from django.db.models.functions import Coalesce, Now
from django.utils import timezone

from repositories.store.stash import stash_index
from workers.choices import DiskTaskKind, DiskTaskState
from workers.models import DiskTask
from workers.runtime import (
    Cancelled,
    ImageioClient,
    backup_disk,
    restore_disk,
)
from workers.runtime.common import MoverError, wait_with_monitor

log = logging.getLogger(__name__)


class TaskLost(Cancelled):
    """The task was taken away from this runner (its worker was declared lost)."""


class TaskMonitor:
    """Writes a task's progress and heartbeat to its row; reads its cancel flag.

    Every write is conditional on (state running, attempt): once the task was
    re-sent elsewhere, this runner's reports match no row and it stops.
    """

    def __init__(self, task: DiskTask):
        self.pk, self.attempt = task.pk, task.attempt
        self.lost = False
        self._last_beat = time.monotonic()

    def _mine(self):
        return DiskTask.objects.filter(pk=self.pk, attempt=self.attempt, state=DiskTaskState.RUNNING)

    def progress(self, done: int, total: int, rate: float, figures: dict | None = None) -> None:
        # The counters so far stand in the result until the final one replaces it: the
        # session page shows bytes sent and stored while the disk moves.
        live = {"result": {"figures": figures}} if figures else {}
        updated = self._mine().update(bytes_done=done, bytes_total=total, rate=rate,
                                      heartbeat=Now(), **live)
        self.lost = self.lost or updated == 0

    def should_cancel(self) -> bool:
        if self.lost:
            return True
        # Long waits (extents of a huge sparse disk) report no progress: beat here too.
        if time.monotonic() - self._last_beat >= 2.0:
            self._last_beat = time.monotonic()
            self.lost = self._mine().update(heartbeat=Now()) == 0
            if self.lost:
                return True
        return self._mine().filter(cancel_requested=True).exists()

    def reads_done(self) -> None:
        """Tell the driver the disk is read: it finalizes the transfer while the rest is sent."""
        if self._mine().update(reads_finished=timezone.now()):
            from workers import wakeups

            wakeups.announce(self.pk)


def _runner_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def claim(task_id: int, attempt: int | None) -> DiskTask | None:
    """Take a pending task for this runner; None when it was cancelled or taken meanwhile.

    A task flagged to stop is never started, whatever the order in which the
    flag and this claim reach the row: request_cancel flags first, then ends a
    pending task; this moves only an unflagged one to running, where the run
    reads the flag within seconds.
    """
    tasks = DiskTask.objects.filter(pk=task_id, state=DiskTaskState.PENDING)
    if attempt is not None:
        tasks = tasks.filter(attempt=attempt)
    now = timezone.now()
    if tasks.filter(cancel_requested=False).update(state=DiskTaskState.RUNNING, started=now,
                                                   heartbeat=Now(), runner=_runner_name()):
        return DiskTask.objects.select_related("manager", "repository", "worker").get(pk=task_id)
    # Asked to stop before it started (a session cancelled or reconciled): end it here.
    tasks.filter(cancel_requested=True).update(state=DiskTaskState.CANCELLED, finished=now,
                                               error="cancelled before it started")
    return None


def run_disk_task(task_id: int, attempt: int | None = None) -> str:
    """Move one disk (backup or restore) and store the outcome on its row.

    django-q2 closes stale database connections before each task.
    """
    task = claim(task_id, attempt)
    if task is None:
        log.info("disk task %s (attempt %s) is no longer pending: nothing to do", task_id, attempt)
        return "skipped"
    from workers.services import note_worker_activity

    note_worker_activity(task.worker_id)
    monitor = TaskMonitor(task)
    try:
        result = _move(task, monitor)
    except Cancelled as exc:
        state, error, result = DiskTaskState.CANCELLED, str(exc), {}
        if monitor.lost:
            log.warning("disk task %s was taken from this runner: stopping", task_id)
            return "lost"
    except Exception as exc:  # noqa: BLE001 - every failure ends on the row, with its reason
        log.exception("disk task %s failed", task_id)
        state, error, result = DiskTaskState.FAILED, f"{type(exc).__name__}: {exc}", {}
    else:
        state, error = DiskTaskState.SUCCEEDED, ""
    finish(task, state, error, result)
    note_worker_activity(task.worker_id)
    return state


def finish(task: DiskTask, state: str, error: str, result: dict) -> None:
    """Store the outcome, only if this run still holds the task."""
    now = timezone.now()
    fields = {"state": state, "error": error, "result": result, "finished": now, "heartbeat": Now()}
    if state == DiskTaskState.SUCCEEDED:
        fields["rate"] = _rate(result)
        if task.kind == DiskTaskKind.BACKUP:  # its reads ended with it, if it didn't say so before
            fields["reads_finished"] = Coalesce("reads_finished", Value(now))
    if DiskTask.objects.filter(pk=task.pk, attempt=task.attempt, state=DiskTaskState.RUNNING).update(**fields):
        from workers import wakeups

        wakeups.announce(task.pk)


def _rate(result: dict) -> float:
    figures = result.get("figures", {})
    moved = figures.get("bytes_read") or figures.get("bytes_written") or 0
    return moved / figures["seconds"] if figures.get("seconds") else 0.0


def _move(task: DiskTask, monitor: TaskMonitor) -> dict:
    repository = task.repository
    key = repository.repository_key()
    connections = settings.VBR_WORKER_CONNECTIONS
    max_rate = settings.VBR_WORKER_MAX_MBPS * 1_000_000 or None
    with repository.client() as mover:
        if task.kind == DiskTaskKind.BACKUP:
            base = None
            if task.mode == "incremental":
                base = mover.get_manifest(task.base_manifest_id).disk(task.disk_engine_id)
            source = _source(task, _transfer_url(task, monitor))
            outcome = backup_disk(source, mover, key, disk_id=task.disk_engine_id,
                                  disk_name=task.disk_name, disk_format=task.disk_format or "raw",
                                  base=base, connections=connections, monitor=monitor,
                                  max_rate=max_rate)
            result = outcome.to_dict()
            # A large disk's index goes through the repository, not the task's row; that can
            # take a while for a huge disk: the task keeps beating and can be cancelled meanwhile.
            index = result.pop("index")
            result.update(wait_with_monitor(
                lambda: stash_index(mover, key, index, settings.VBR_INDEX_INLINE_BYTES), monitor,
                keepalive=lambda: None, name="stash-index"))
            _final_progress(monitor, result["figures"])
            return result
        index = mover.get_manifest(task.manifest_id).disk(task.disk_engine_id)
        figures = restore_disk(_source(task, task.transfer_url), mover, key, index, connections=connections,
                               monitor=monitor, max_rate=max_rate)
        _final_progress(monitor, figures)
        return {"disk_id": index.id, "size": index.size, "figures": figures}


def _source(task: DiskTask, transfer_url: str) -> ImageioClient:
    return ImageioClient(transfer_url, ca_pem=task.manager.ca_certificate or None,
                         retries=settings.VBR_WORKER_RETRIES)


def _transfer_url(task: DiskTask, monitor: TaskMonitor) -> str:
    """The URL of the disk's transfer. A session driver hands a backup's disk over while the
    engine is still opening its transfer (the runner gets ready meanwhile) and writes the URL
    on the task once it is open. Where the runners use Redis the driver announces it and the
    runner wakes at once (looking at the row every quarter of a second meanwhile); else it
    looks every 5 ms for a second (a quick engine opens one within that), then every quarter
    of a second."""
    from workers import wakeups

    announced = wakeups.available()
    started = time.monotonic()
    while not task.transfer_url:
        if monitor.should_cancel():
            raise Cancelled("stopped before the disk's transfer was open")
        waited = time.monotonic() - started
        if waited > settings.VBR_ENGINE_WAIT_TIMEOUT:
            raise MoverError(f"the engine did not open the transfer of disk {task.disk_name} within "
                             f"{settings.VBR_ENGINE_WAIT_TIMEOUT} s (VBR_ENGINE_WAIT_TIMEOUT)")
        wakeups.wait_for_news([task.pk], 0.005 if waited < 1.0 and not announced else 0.25, topic=wakeups.URL)
        task.transfer_url = DiskTask.objects.filter(pk=task.pk).values_list("transfer_url", flat=True).first() or ""
    return task.transfer_url


def _final_progress(monitor: TaskMonitor, figures: dict) -> None:
    if monitor.lost:
        raise TaskLost("the task was taken from this runner")


def runner_ping() -> int:
    """Sent by a starting runner to its own queue: answers once its qcluster takes tasks."""
    return os.getpid()


# Control-side tasks (schedules and the pages' actions)


def check_workers() -> dict:
    """Scheduled on the control runner: silent workers become unreachable, their tasks move."""
    from workers.services import check_workers as check

    return check()


def stop_idle_workers() -> list[str]:
    """Scheduled on the control runner: stop workers idle past VBR_WORKER_IDLE_MINUTES."""
    from workers.deployment import stop_idle_workers as stop_idle

    return stop_idle()


def purge_finished_tasks() -> int:
    """Scheduled daily on the control runner: forget disk tasks past VBR_DISK_TASK_KEEP_DAYS."""
    from workers.services import purge_finished_tasks as purge

    return purge()


def worker_action(worker_id: int, action: str, force: bool = False) -> str:
    """Deploy, start, stop, redeploy or remove a worker (the pages enqueue this).

    A stop or a removal was begun by the request (services.request_action):
    here the runner is ended and the VM powered off (and deleted), unless the
    worker was started again since.
    """
    from workers import deployment
    from workers.choices import WorkerState
    from workers.models import Worker

    worker = Worker.objects.select_related("manager", "cluster", "preferred_host",
                                           "storage_domain").filter(pk=worker_id).first()
    if worker is None:
        return "gone"
    if action in ("stop", "remove") and worker.state != WorkerState.STOPPING:
        log.info("worker %s is %s: not stopping it", worker.name, worker.state)
        return "skipped"
    actions = {"deploy": deployment.deploy, "start": deployment.start, "stop": deployment.shut_down,
               "redeploy": deployment.redeploy, "remove": deployment.remove_stopping}
    try:
        actions[action](worker)
    except deployment.DeploymentError as exc:
        log.warning("worker %s: %s", worker.name, exc)
        return f"failed: {exc}"
    return "done"
