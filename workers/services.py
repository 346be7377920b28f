"""What acts on workers: heartbeats, the liveness check, activity and idle stop.

Deployment (engine calls through plugin/) lives in workers.deployment.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.db.models.functions import Now
from django.utils import timezone

from vbrsite.times import stamp
from workers.choices import (
    WORKER_LIVE_STATES,
    DiskTaskState,
    WorkerState,
)
from workers.models import DiskTask, Worker

log = logging.getLogger(__name__)


def note_worker_activity(worker_id: int | None) -> None:
    """Busy while the worker runs a task, ready (idle since now) when it runs none.

    Read and written with the worker's row locked: otherwise a runner whose
    disk ended could read "none running", another runner take the next disk
    and write busy, and the first write ready over it, a disk running.
    """
    if worker_id is None:
        return
    workers = Worker.objects.filter(pk=worker_id, state__in=(WorkerState.READY, WorkerState.BUSY))
    with transaction.atomic():
        if not workers.select_for_update(no_key=True).exists():
            return
        running = DiskTask.objects.filter(worker_id=worker_id, state=DiskTaskState.RUNNING).exists()
        if running:
            workers.update(state=WorkerState.BUSY, idle_since=None)
        else:
            workers.update(state=WorkerState.READY, idle_since=timezone.now())


def heartbeat(worker: Worker, *, version: str = "", runner_host: str = "") -> bool:
    """Record a heartbeat from the worker's runner; the first one makes it ready.

    A worker that was declared unreachable comes back as ready (its tasks were
    already failed or sent elsewhere). False when the worker is stopping,
    stopped or gone: the runner should then exit.
    """
    now = timezone.now()
    # The database's clock, which every check compares with: a worker VM's clock may be off.
    fields = {"last_heartbeat": Now()}
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

    # Heartbeats carry the database's time (a worker VM's clock may be off): compare with it.
    limit = (now - timedelta(seconds=settings.VBR_WORKER_HEARTBEAT_TIMEOUT) if now is not None
             else Now() - timedelta(seconds=settings.VBR_WORKER_HEARTBEAT_TIMEOUT))
    silent = Worker.objects.filter(Q(last_heartbeat__lt=limit) | Q(last_heartbeat__isnull=True),
                                   state__in=(WorkerState.READY, WorkerState.BUSY))
    lost = []
    for worker in silent:
        seen = stamp(worker.last_heartbeat) if worker.last_heartbeat else "never"
        error = f"worker {worker.name} stopped answering (last heartbeat: {seen})"
        # Still silent as it is marked: a heartbeat since the read keeps the worker and its disks.
        if silent.filter(pk=worker.pk, state=worker.state).update(
                state=WorkerState.UNREACHABLE, last_error=error):
            lost.append(worker.name)
            log.warning(error)
    moved = 0
    for task in DiskTask.objects.filter(worker__state=WorkerState.UNREACHABLE,
                                        state__in=(DiskTaskState.PENDING, DiskTaskState.RUNNING)
                                        ).select_related("worker", "manager"):
        reason = f"worker {task.worker.name} was lost: {task.worker.last_error}"
        # Still lost as its disk moves: a worker whose heartbeat brought it back since it
        # was marked keeps its disks (each restart of a disk uses an attempt).
        moved += dispatch.resend(task, reason, exclude=(task.worker_id,),
                                 still=Q(worker__in=Worker.objects.filter(state=WorkerState.UNREACHABLE)))
    moved += _check_orphaned_tasks(limit)
    # Moved: sent to another worker; not a disk that ran out of attempts, was cancelled or stayed.
    return {"unreachable": lost, "tasks_moved": moved}


def _check_orphaned_tasks(limit) -> int:
    """Send again running tasks whose own heartbeat stopped, on any worker; how many went.

    The worker's heartbeat comes from its runner's parent process: a task process
    that died (out of memory, a timeout) leaves a worker that looks fine and a task
    that would show "running" for good.
    """
    from workers import dispatch

    count = 0
    stale = DiskTask.objects.filter(state=DiskTaskState.RUNNING, heartbeat__lt=limit).select_related(
        "manager", "worker")
    for task in stale:
        count += dispatch.resend(task, f"{task.worker_name}: its runner stopped reporting on this disk",
                                 still=Q(heartbeat__lt=limit))
    return count


def worker_record(worker: Worker) -> dict:
    """What list_workers --json and the pages show of a worker."""
    active = worker.active_tasks()
    return {
        "name": worker.name, "manager": worker.manager.name, "cluster": worker.cluster.name,
        "preferred_host": worker.preferred_host.name if worker.preferred_host_id else None,
        "state": worker.state, "queue": worker.queue, "engine_vm_id": worker.engine_vm_id or None,
        "template": worker.template, "cpus": worker.cpus, "memory_mib": worker.memory,
        "vnic_profile": worker.vnic_profile or None,
        "storage_domain": worker.storage_domain.name if worker.storage_domain_id else None,
        "max_tasks": worker.max_tasks, "active_tasks": active.count(),
        "running_tasks": active.filter(state=DiskTaskState.RUNNING).count(),
        "throughput": worker.throughput(), "software_version": worker.software_version or None,
        "last_heartbeat": worker.last_heartbeat.isoformat() if worker.last_heartbeat else None,
        "last_error": worker.last_error or None,
    }


def embedded_record() -> dict:
    """The embedded worker (the backup server itself) as list_workers shows it."""
    from workers.choices import EMBEDDED_QUEUE

    active = DiskTask.objects.filter(worker__isnull=True, state__in=(DiskTaskState.PENDING,
                                                                     DiskTaskState.RUNNING))
    running = active.filter(state=DiskTaskState.RUNNING)
    # The same keys as worker_record: scripts read every row alike.
    return {"name": "embedded", "manager": None, "cluster": None, "preferred_host": None,
            "state": "embedded", "queue": EMBEDDED_QUEUE, "engine_vm_id": None, "template": None,
            "cpus": None, "memory_mib": None, "vnic_profile": None, "storage_domain": None,
            "max_tasks": None, "active_tasks": active.count(), "running_tasks": running.count(),
            "throughput": float(sum(running.values_list("rate", flat=True))),
            "software_version": None, "last_heartbeat": None, "last_error": None}


WORKER_ACTIONS = ("deploy", "start", "stop", "redeploy", "remove")


def request_action(worker: Worker, action: str, *, force: bool = False) -> None:
    """Have the control runner deploy, start, stop, redeploy or remove the worker.

    The state changes at once (so the page shows it and the worker takes no new
    task), then the engine work runs on the control runner. A stop or a removal
    does its database half here (deployment.begin_stop: queued disks go to other
    workers; refused, raising DeploymentError, while the worker runs disks and
    ``force`` isn't given): the control runner may be hours behind, and a
    worker marked stopping meanwhile would have its runner exit under a disk
    it had just taken, and its queued disks wait for no runner.
    """
    from django_q.tasks import async_task

    from workers import deployment

    if action not in WORKER_ACTIONS:
        raise ValueError(f"unknown worker action {action!r}: use one of {', '.join(WORKER_ACTIONS)}")
    if action in ("stop", "remove"):
        deployment.begin_stop(worker, force=force)
    else:
        transitional = {"deploy": WorkerState.DEPLOYING, "start": WorkerState.STARTING,
                        "redeploy": WorkerState.DEPLOYING}
        Worker.objects.filter(pk=worker.pk).update(state=transitional[action], last_error="")
    worker_id = worker.pk
    transaction.on_commit(lambda: async_task("workers.tasks.worker_action", worker_id, action, force,
                                             task_name=f"worker-{action}-{worker_id}"))


def wake_workers(manager, clusters=None) -> list[str]:
    """Start the stopped workers of these clusters (all of the manager's when None).

    The session driver calls this when a session starts, so that its workers
    are up by the time its transfers are ready; disks meanwhile go to other
    ready workers or the embedded one.
    """
    stopped = Worker.objects.filter(manager=manager, state=WorkerState.STOPPED)
    if clusters is not None:
        stopped = stopped.filter(cluster__in=list(clusters))
    names = []
    for worker in stopped:
        request_action(worker, "start")
        names.append(worker.name)
    return names


def purge_finished_tasks(now=None) -> int:
    """Delete disk tasks that ended more than VBR_DISK_TASK_KEEP_DAYS ago; how many went.

    Their figures live on in the sessions and their block indexes in the
    manifests; the rows only serve the pages and troubleshooting.
    """
    from workers.choices import DISK_TASK_TERMINAL_STATES

    limit = (now or timezone.now()) - timedelta(days=settings.VBR_DISK_TASK_KEEP_DAYS)
    deleted, _ = DiskTask.objects.filter(state__in=DISK_TASK_TERMINAL_STATES,
                                         finished__lt=limit).delete()
    return deleted
