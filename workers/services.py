"""What acts on workers: heartbeats, the liveness check, activity and idle stop.

Deployment (engine calls through plugin/) lives in workers.deployment.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from workers.choices import (
    WORKER_LIVE_STATES,
    DiskTaskState,
    WorkerState,
)
from workers.models import DiskTask, Worker

log = logging.getLogger(__name__)


def note_worker_activity(worker_id: int | None) -> None:
    """Busy while the worker runs a task, ready (idle since now) when it runs none."""
    if worker_id is None:
        return
    now = timezone.now()
    running = DiskTask.objects.filter(worker_id=worker_id, state=DiskTaskState.RUNNING).exists()
    workers = Worker.objects.filter(pk=worker_id, state__in=(WorkerState.READY, WorkerState.BUSY))
    if running:
        workers.update(state=WorkerState.BUSY, idle_since=None)
    else:
        workers.update(state=WorkerState.READY, idle_since=now)


def heartbeat(worker: Worker, *, version: str = "", runner_host: str = "") -> bool:
    """Record a heartbeat from the worker's runner; the first one makes it ready.

    A worker that was declared unreachable comes back as ready (its tasks were
    already failed or sent elsewhere). False when the worker is stopping,
    stopped or gone: the runner should then exit.
    """
    now = timezone.now()
    fields = {"last_heartbeat": now}
    if version:
        fields["software_version"] = version
    if runner_host:
        fields["runner_host"] = runner_host
    alive = Worker.objects.filter(pk=worker.pk, state__in=(*WORKER_LIVE_STATES,
                                                           WorkerState.DEPLOYING))
    if alive.update(**fields):
        Worker.objects.filter(pk=worker.pk, state=WorkerState.STARTING).update(
            state=WorkerState.READY, idle_since=now, last_error="")
        return True
    back = Worker.objects.filter(pk=worker.pk, state=WorkerState.UNREACHABLE).update(
        state=WorkerState.READY, idle_since=now, last_error="", **fields)
    return bool(back)


def check_workers(now=None) -> dict:
    """Mark silent workers unreachable, and move the tasks they held.

    Running tasks of a lost worker fail for that run and are sent again to
    another worker (or fail for good after VBR_DISK_TASK_ATTEMPTS runs);
    pending ones go elsewhere at once. The embedded worker's running tasks are
    checked by their own heartbeat.
    """
    from workers import dispatch

    now = now or timezone.now()
    limit = now - timedelta(seconds=settings.VBR_WORKER_HEARTBEAT_TIMEOUT)
    silent = Worker.objects.filter(Q(last_heartbeat__lt=limit) | Q(last_heartbeat__isnull=True),
                                   state__in=(WorkerState.READY, WorkerState.BUSY))
    lost = []
    for worker in silent:
        seen = worker.last_heartbeat.isoformat() if worker.last_heartbeat else "never"
        error = f"worker {worker.name} stopped answering (last heartbeat: {seen})"
        if Worker.objects.filter(pk=worker.pk, state=worker.state).update(
                state=WorkerState.UNREACHABLE, last_error=error):
            lost.append(worker.name)
            log.warning(error)
    moved = 0
    for task in DiskTask.objects.filter(worker__state=WorkerState.UNREACHABLE,
                                        state__in=(DiskTaskState.PENDING, DiskTaskState.RUNNING)
                                        ).select_related("worker", "manager"):
        reason = f"worker {task.worker.name} was lost: {task.worker.last_error}"
        dispatch.resend(task, reason, exclude=(task.worker_id,))
        moved += 1
    moved += _check_orphaned_tasks(limit)
    return {"unreachable": lost, "tasks_moved": moved}


def _check_orphaned_tasks(limit) -> int:
    """Running tasks of the embedded worker (or any) whose own heartbeat stopped."""
    from workers import dispatch

    count = 0
    stale = DiskTask.objects.filter(state=DiskTaskState.RUNNING, heartbeat__lt=limit,
                                    worker__isnull=True).select_related("manager")
    for task in stale:
        dispatch.resend(task, "the embedded worker's runner stopped reporting")
        count += 1
    return count
