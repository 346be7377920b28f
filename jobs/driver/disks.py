"""Each disk of a VM handed to a worker as a DiskTask, and followed until it ends.

The driver never moves data itself: it gives the disk to a worker runner
(workers.dispatch picks the worker in the VM's cluster, least busy first,
the embedded worker last), then the URL of its transfer once the engine has
opened it, and polls the task row for progress and the result: the disk's
block index and its figures. A backup's task also says when it has read every
block it needs: the driver may finalize the transfer then, while the worker
sends the last blocks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from jobs.driver.context import Cancelled, SessionRun, VmFailed
from jobs.models import TaskSession

POLL_SECONDS = 0.5
# Small disks and no-change incrementals end in well under a second: poll
# quickly at first (a look is one indexed read), then back off to POLL_SECONDS.
FIRST_POLL_SECONDS = 0.01
QUICK_POLLS = 40
# Where runners announce a task's end (workers.wakeups), the driver wakes at once
# and reads the rows only for progress and the odd failure.
WOKEN_FIRST_POLL_SECONDS = 0.1
CANCEL_GRACE_SECONDS = 20.0
# A disk task no worker runner has taken after this long means no runner serves its queue.


@dataclass
class DiskWork:
    """One disk of the VM: what the engine says of it, its transfer, and its worker task."""

    disk: object  # plugin.engine.DiskInfo
    mode: str
    reason: str = ""
    transfer_id: str = ""
    transfer_url: str = ""
    task: object = None  # workers.models.DiskTask
    figures: dict = field(default_factory=dict)
    interface: str = ""  # how the VM sees the disk (restore attaches it the same way)
    bootable: bool = False
    read_told: bool = False  # follow() called read() for it
    transfer_finalizing: bool = False  # finalized once the worker had read the disk

    def as_row(self) -> dict:
        """The disk's entry in TaskSession.disks (what the progress page shows)."""
        task = self.task
        done = task.bytes_done if task is not None else 0
        total = (task.bytes_total if task is not None and task.bytes_total else 0)
        return {
            "id": self.disk.id, "name": self.disk.name, "size": self.disk.provisioned_size,
            "format": self.disk.format, "mode": self.mode, "reason": self.reason,
            "state": task.state if task is not None else "pending",
            "bytes_total": total, "bytes_done": done,
            "progress": task.percent() if task is not None else 0,
            "rate": task.rate if task is not None else 0,
            "worker": task.worker_name if task is not None else "",
            "error": task.error if task is not None else "",
            **{k: self.figures.get(k, 0) for k in ("bytes_read", "bytes_sent", "bytes_stored")},
        }


def inventory_disk(manager, vm, disk):
    """The inventory row of an engine disk, created when the last sync hasn't seen it yet."""
    from inventory.models import Disk

    row, _ = Disk.objects.get_or_create(
        manager=manager, engine_id=disk.id,
        defaults={"name": disk.name, "format": disk.format, "provisioned_size": disk.provisioned_size,
                  "actual_size": disk.actual_size, "vm": vm,
                  "backup_incremental": disk.backup_incremental, "sparse": disk.sparse},
    )
    return row


def submit(run: SessionRun, vm, repository, work: DiskWork, base_manifest_id: str | None):
    """Give one disk to a worker of the VM's cluster; the DiskTask."""
    from workers import dispatch

    disk = inventory_disk(vm.manager, vm, work.disk)
    with dispatch.worker_for(vm.cluster, vm.manager) as worker:  # no other choice until the task exists
        task = dispatch.submit_backup_disk(
            session_id=run.session.pk, manager=vm.manager, repository=repository, disk=disk,
            transfer_url=work.transfer_url, mode=work.mode,
            base_manifest_id=base_manifest_id if work.mode == "incremental" else None, worker=worker,
            cluster=vm.cluster)
    # Only once committed: a task whose commit failed doesn't exist, and cancelling it on the
    # way out would raise DoesNotExist over the real error.
    work.task = task
    return task


def open_transfer(work: DiskWork, transfer_url: str) -> None:
    """Give the disk's task the URL of its transfer, now open (submit() may come before it)."""
    from workers import wakeups
    from workers.models import DiskTask

    work.transfer_url = work.task.transfer_url = transfer_url
    DiskTask.objects.filter(pk=work.task.pk).update(transfer_url=transfer_url)
    wakeups.announce(work.task.pk, topic=wakeups.URL)


def follow(run: SessionRun, task_session: TaskSession, works: list[DiskWork],
           read: Callable[[DiskWork], None] | None = None) -> None:
    """Poll the disk tasks until all succeeded; VmFailed or Cancelled otherwise.

    ``read(work)`` is called once for each disk whose worker has read every
    block it needs (its transfer can be finalized while the rest is sent).
    On the way out (failure or cancel), every task still running is asked to
    stop and given a few seconds to do so before the transfers are cancelled.
    """
    from workers import dispatch, wakeups

    first = WOKEN_FIRST_POLL_SECONDS if wakeups.available() else FIRST_POLL_SECONDS
    pace = dispatch.PollPace(first, POLL_SECONDS, quick=QUICK_POLLS)
    check_workers = dispatch.LivenessCheck()
    try:
        while True:
            check_workers()
            _refresh(works)
            failed = [w for w in works if w.task.state in ("failed", "cancelled")]
            if read is not None and not failed:  # before the progress: the engine takes a while
                for w in works:
                    if w.task.reads_finished and not w.read_told:
                        w.read_told = True
                        read(w)
            _record(task_session, works)
            if failed:
                w = failed[0]
                raise VmFailed(f"disk {w.disk.name}: {w.task.error or 'the worker task ' + w.task.state}")
            if all(w.task.state == "succeeded" for w in works):
                return
            _check_taken(works)
            run.check_cancelled()
            wakeups.wait_for_news([w.task.pk for w in works if w.task.state != "succeeded"],
                                 pace.next([w.task for w in works]))
    except (VmFailed, Cancelled):
        stop_tasks(works)
        _record(task_session, works)
        raise


def stop_tasks(works: list[DiskWork]) -> None:
    """Ask every unfinished disk task to stop and wait (a little) until they did."""
    from workers import dispatch

    dispatch.cancel_and_wait([w.task for w in works if w.task is not None], CANCEL_GRACE_SECONDS, POLL_SECONDS)
    _refresh(works)  # figures of disks that finished meanwhile


def _check_taken(works: list[DiskWork]) -> None:
    from workers import dispatch

    for w in works:
        problem = dispatch.not_taken(w.task, w.disk.name)
        if problem:
            raise VmFailed(problem)


def _refresh(works: list[DiskWork]) -> None:
    for w in works:
        if w.task is not None:
            w.task.refresh_from_db()
            w.figures = w.task.figures()  # live while the disk moves


def _record(task_session: TaskSession, works: list[DiskWork]) -> None:
    """Write the disks' figures onto the VM's row (the heartbeat sums them into the session)."""
    rows = [w.as_row() for w in works]
    if rows == task_session.disks:
        return  # nothing new since the last poll: no write
    total = sum(r["bytes_total"] or r["size"] for r in rows)
    done = sum(r["bytes_done"] for r in rows)
    task_session.disks = rows
    task_session.bytes_total = total
    task_session.bytes_read = sum(r["bytes_read"] for r in rows) or done
    task_session.bytes_sent = sum(r["bytes_sent"] for r in rows)
    task_session.bytes_stored = sum(r["bytes_stored"] for r in rows)
    task_session.rate = sum(r["rate"] for r in rows if r["state"] == "running")
    task_session.progress = min(100.0, 100.0 * done / total) if total else 0.0
    TaskSession.objects.filter(pk=task_session.pk).update(
        disks=rows, bytes_total=total, bytes_read=task_session.bytes_read,
        bytes_sent=task_session.bytes_sent, bytes_stored=task_session.bytes_stored,
        rate=task_session.rate, progress=task_session.progress)
