"""Restoring disks: create them on the target storage domains, have workers upload them, finalize.

The driver never moves data itself: for each disk it opens an upload transfer
and hands its URL to a worker (workers.dispatch: a worker of the target
cluster, least busy first, the embedded worker last). The worker writes the
stored blocks and sends zero blocks as ``PATCH zero``; the driver follows the
task rows, then finalizes the transfers.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from jobs.models import TaskSession
from jobs.restore.points import RestoreError
from jobs.restore.run import Cancelled, RestoreRun
from plugin import engine as ovirt

log = logging.getLogger(__name__)
POLL_SECONDS = 0.5
FIRST_POLL_SECONDS = 0.02
CANCEL_GRACE_SECONDS = 20.0


@dataclass
class DiskJob:
    """One disk to restore: its index in the restore point and the disk made for it."""

    source: object  # repositories.store.DiskIndex
    name: str
    storage_domain_id: str
    format: str = "cow"
    sparse: bool = True
    disk_id: str = ""
    transfer_id: str = ""
    transfer_url: str = ""
    task: object = None  # workers.models.DiskTask

    def as_row(self) -> dict:
        """The disk's entry in TaskSession.disks (what the progress page shows)."""
        task = self.task
        figures = task.figures() if task is not None else {}
        return {
            "id": self.source.id, "name": self.name, "size": self.source.size,
            "format": self.format, "mode": "restore", "new_disk_id": self.disk_id,
            "state": task.state if task is not None else "pending",
            "bytes_total": (task.bytes_total if task is not None else 0) or self.source.allocated_bytes(),
            "bytes_done": task.bytes_done if task is not None else 0,
            "progress": task.percent() if task is not None else 0,
            "rate": task.rate if task is not None else 0,
            "worker": task.worker_name if task is not None else "",
            "error": task.error if task is not None else "",
            "bytes_read": figures.get("bytes_received", 0), "bytes_sent": figures.get("bytes_written", 0),
            "bytes_stored": 0,
        }


FORMATS = {"cow": "cow", "qcow2": "cow", "raw": "raw"}


def disk_job(run: RestoreRun, index, ovf_disk, storage_domain_id: str, name: str) -> DiskJob:
    """The disk to make for ``index``: the source's format and allocation unless the request chose."""
    request = run.request
    disk_format = (request.disk_format or (ovf_disk.format if ovf_disk and ovf_disk.format else "")
                   or FORMATS.get(index.format, "cow"))
    sparse = ovf_disk.sparse if ovf_disk else True
    if request.allocation:
        sparse = request.allocation == "thin"
    return DiskJob(source=index, name=name, storage_domain_id=storage_domain_id, format=disk_format,
                   sparse=sparse)


def inventory_cluster(run: RestoreRun, cluster_id: str | None):
    """The inventory row of an engine cluster of the restore's manager (None: not known there)."""
    from inventory.models import Cluster

    if not cluster_id:
        return None
    return Cluster.objects.filter(manager=run.manager, engine_id=cluster_id).first()


def wake_workers(run: RestoreRun, cluster) -> None:
    """Start the stopped workers of ``cluster`` (the inventory row of the cluster restored into;
    None: all the manager's), so they are up by the time the transfers are ready; meanwhile
    disks go to ready workers or the embedded one."""
    from workers.services import wake_workers as start_stopped

    try:
        started = start_stopped(run.manager, [cluster] if cluster is not None else None)
    except Exception as exc:  # noqa: BLE001 — a worker that can't be started must not stop the restore
        log.warning("restore session %s: workers not woken: %s", run.session.pk, exc)
        return
    if started:
        run.log(f"Starting stopped workers: {', '.join(started)}.")


def create_disks(run: RestoreRun, jobs: list[DiskJob]) -> None:
    """Create every disk (tagged), then wait until all are ready."""
    for job in jobs:
        # cow (qcow2) is always sparse; a raw disk keeps the source's allocation.
        disk = ovirt.create_disk(run.engine, name=job.name, storage_domain_id=job.storage_domain_id,
                                 provisioned_size=job.source.size, format=job.format,
                                 sparse=True if job.format == "cow" else job.sparse,
                                 description=run.tag)
        job.disk_id = disk.id
        run.created.disks.append(disk.id)
        run.remember()
        run.log(f"Created disk {job.name} ({job.source.size:,} bytes, {job.format}) as {disk.id}.")
    for job in jobs:
        ovirt.wait_disk_ok(run.engine, job.disk_id, timeout=run.wait_timeout,
                           should_stop=run.should_stop)


def upload_disks(run: RestoreRun, jobs: list[DiskJob], cluster=None) -> None:
    """Open an upload transfer per disk, hand each to a worker, follow them, finalize."""
    try:
        for job in jobs:
            _hand_over(run, job, cluster)
    except BaseException:
        stop_tasks([job for job in jobs if job.task is not None])  # none goes on alone
        raise
    follow(run, jobs)
    for job in jobs:
        ovirt.finalize_transfer(run.engine, job.transfer_id)
    for job in jobs:
        ovirt.wait_transfer_finished(run.engine, job.transfer_id, job.disk_id,
                                     timeout=run.wait_timeout, should_stop=run.should_stop)
        run.created.transfers.remove(job.transfer_id)
        run.remember()
        figures = job.task.figures()
        run.log(f"Restored disk {job.name}: {figures.get('bytes_written', 0):,} bytes written, "
                f"{figures.get('bytes_zeroed', 0):,} zeroed, in {figures.get('seconds', 0):.1f} s.")


def _hand_over(run: RestoreRun, job: DiskJob, cluster) -> None:
    """Open the disk's upload transfer and give it to a worker."""
    from workers import dispatch

    run.check_cancelled()
    transfer = ovirt.create_transfer(run.engine, direction="upload", disk_id=job.disk_id,
                                     format="raw", description=run.tag,
                                     inactivity_timeout=ovirt.WORKER_INACTIVITY_SECONDS)
    job.transfer_id = transfer.id
    run.created.transfers.append(transfer.id)
    run.remember()
    transfer = ovirt.wait_transfer_ready(run.engine, transfer.id, timeout=run.wait_timeout,
                                         should_stop=run.should_stop)
    job.transfer_url = transfer.transfer_url or transfer.proxy_url
    repository = run.point.repository
    with dispatch.worker_for(cluster, run.manager) as worker:  # no other choice until the task exists
        task = dispatch.submit_restore_disk(
            session_id=run.session.pk, manager=run.manager, repository=repository,
            manifest_id=run.point.manifest_id, source_disk_id=job.source.id,
            transfer_url=job.transfer_url, worker=worker, cluster=cluster)
    job.task = task  # only once committed: see jobs.driver.disks.submit
    run.log(f"Disk {job.name} handed to the {job.task.worker_name}.")


def follow(run: RestoreRun, jobs: list[DiskJob]) -> None:
    """Poll the disk tasks until all succeeded; RestoreError or Cancelled otherwise."""
    from workers import dispatch

    pace = dispatch.PollPace(FIRST_POLL_SECONDS, POLL_SECONDS)
    check_workers = dispatch.LivenessCheck()
    try:
        while True:
            check_workers()
            for job in jobs:
                job.task.refresh_from_db()
            record(run, jobs)
            failed = [job for job in jobs if job.task.state in ("failed", "cancelled")]
            if failed:
                job = failed[0]
                raise RestoreError(f"disk {job.name}: {job.task.error or 'the worker task ' + job.task.state}")
            if all(job.task.state == "succeeded" for job in jobs):
                return
            for job in jobs:
                if problem := dispatch.not_taken(job.task, job.name):
                    raise RestoreError(problem)
            run.check_cancelled()
            time.sleep(pace.next([job.task for job in jobs]))
    except (RestoreError, Cancelled):
        stop_tasks(jobs)
        record(run, jobs)
        raise


def stop_tasks(jobs: list[DiskJob]) -> None:
    """Ask every unfinished disk task to stop, and give them a little time to do so."""
    from workers import dispatch

    dispatch.cancel_and_wait([job.task for job in jobs if job.task is not None], CANCEL_GRACE_SECONDS,
                             POLL_SECONDS)


def record(run: RestoreRun, jobs: list[DiskJob]) -> None:
    """Write the disks' progress onto the task row and the session (the progress page reads them)."""
    rows = [job.as_row() for job in jobs]
    total = sum(row["bytes_total"] for row in rows)
    done = sum(row["bytes_done"] for row in rows)
    figures = {
        "bytes_total": total, "bytes_read": done,
        "bytes_sent": sum(row["bytes_sent"] for row in rows),
        "rate": sum(row["rate"] for row in rows if row["state"] == "running"),
        "progress": min(100.0, 100.0 * done / total) if total else 0.0,
    }
    if run.task is not None:
        TaskSession.objects.filter(pk=run.task.pk).update(disks=rows, **figures)
    run.session.beat(**figures)
