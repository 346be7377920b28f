"""The restore session driver: runs on the control runner, like a backup session.

``run_restore_session(session)`` (called by jobs.driver.drive once the session
is claimed) restores an entire VM (vm.py) or disks (below) and returns the end
state and summary that drive() terminates the session with. On
failure or cancel, everything the session created in the engine (transfers,
VMs, disks — all tagged with its description) is removed, unless the original
VM was already replaced, in which case what was restored is kept.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager

from django.conf import settings
from django.utils import timezone

from jobs.choices import DONE_STATES, LogLevel, SessionState
from jobs.models import Session, TaskSession, VmLock
from jobs.models.replaced_vms import current_vm_row
from jobs.restore import targets
from jobs.restore.disks import create_disks, disk_job, inventory_cluster, upload_disks, wake_workers
from jobs.restore.ovf import read_ovf
from jobs.restore.placement import attach_to_vm, check_vm_takes_disks
from jobs.restore.points import RestoreError, get_point, held, load_manifest, manifest_disk
from jobs.restore.requests import VM, RestoreRequest
from jobs.restore.run import Cancelled, RestoreRun, pulse
from jobs.restore.vm import restore_vm, source_domain
from plugin import engine as ovirt
from plugin.errors import EngineError
from plugin.placement import Placement, PlacementError
from repositories.datamover.client import DataMoverError
from repositories.store import StoreError
from vbrsite.times import stamp

log = logging.getLogger(__name__)
EXPECTED_ERRORS = (RestoreError, PlacementError, EngineError, DataMoverError, StoreError)


def run_restore_session(session: Session) -> tuple[str, str]:
    """Drive a started (running) restore session; its end state and summary.

    The caller (jobs.driver.drive, on the control runner) claimed the session
    with ``start()`` and terminates it with what this returns.
    """
    run = None
    try:
        request = RestoreRequest.from_options(session.options)
        point = get_point(request.point)
        request.validate(point)
        run = RestoreRun(session, request, point, request.manager_of(point))
        run.task = TaskSession.objects.create(
            session=session, vm=point.vm, vm_name=point.vm_name, state=SessionState.RUNNING,
            started=timezone.now(), restore_point=point, mode="")
        session.log(f"Restoring from restore point {point.pk} of {point.vm_name} "
                    f"({point.get_type_display().lower()}, {stamp(point.time)}) "
                    f"in repository {point.repository.name}.")
        with held(point, f"restore session {session.pk} {point.vm_name}", ttl=settings.TASK_TIMEOUT), \
                pulse(session):
            run.manifest = load_manifest(point)
            summary = _restore(run)
    except Cancelled:
        return _finish(run, SessionState.CANCELLED, "Cancelled; what it created was removed.")
    except EXPECTED_ERRORS as exc:
        if session.cancel_was_requested():
            # A wait the cancel cut short (WaitAborted) is the cancel, not a failure.
            return _finish(run, SessionState.CANCELLED, "Cancelled; what it created was removed.")
        session.error(f"Restore failed: {exc}")
        return _finish(run, SessionState.FAILED, str(exc))
    except Exception as exc:
        log.exception("restore session %s failed", session.pk)
        session.error(f"Restore failed on an unexpected error: {exc!r}")
        return _finish(run, SessionState.FAILED, f"unexpected error: {exc!r}")
    session.log(summary)
    # What a successful restore made stays: reconcile must never take it for leftovers.
    run.past_point_of_no_return = True
    run.remember()
    # Restored, with something the log warned about (a NIC left unplugged, a mapping that
    # matched nothing, the original not started again): the session says so, as a backup's does.
    warned = session.log_lines.filter(level=LogLevel.WARNING).exists()
    return _finish(run, SessionState.WARNING if warned else SessionState.SUCCESS, summary)


def _restore(run: RestoreRun) -> str:
    timeout = float(getattr(settings, "VBR_ENGINE_TIMEOUT", 60))
    with _vm_held(run), ovirt.connect(run.manager.credentials(), timeout=timeout) as engine:
        run.engine = engine
        try:
            return restore_vm(run) if run.request.kind == VM else restore_disks(run)
        except BaseException:
            cleanup(run)
            raise


@contextmanager
def _vm_held(run: RestoreRun):
    """For an in-place restore, hold the VM as a backup does: no backup of it starts meanwhile."""
    vm = _vm_to_replace(run)
    if not (run.request.kind == VM and run.request.replace and vm is not None):
        yield
        return
    holder = VmLock.acquire(vm, run.session)
    if holder is not None:
        raise RestoreError(f"{vm.name} is held by session {holder.pk} ({holder.name}): wait until it "
                           "ends, or cancel it, then restore again")
    try:
        yield
    finally:
        VmLock.release(vm, run.session)


def _vm_to_replace(run: RestoreRun):
    """The inventory row of the VM an in-place restore replaces: the restore point's own, or the
    VM an earlier in-place restore on this manager re-created in its place (once the inventory
    has it)."""
    now = current_vm_row(run.manager.pk, run.point.vm_engine_id, settled=False)
    point_vm = run.point.vm
    # The restore point's own VM only on this manager: another's (an oVirt DR site) is not replaced here.
    return now or (point_vm if point_vm is not None and point_vm.manager_id == run.manager.pk else None)


def restore_disks(run: RestoreRun) -> str:
    """Restore the chosen disks as new floating disks, or attached to an existing VM."""
    request, engine = run.request, run.engine
    target_vm = targets.vm(engine, request.vm) if request.vm else None
    config = _ovf_or_none(run)
    placement = Placement.for_vm(engine, target_vm) if target_vm else Placement.floating(engine)
    jobs = [_disk_job(run, disk_id, config, placement) for disk_id in request.disks]
    if target_vm is not None:
        # Before anything is created: a suspended VM would still be so after the upload.
        check_vm_takes_disks(target_vm)
    cluster = _cluster_row(run, target_vm)
    wake_workers(run, cluster)
    create_disks(run, jobs)
    upload_disks(run, jobs, cluster)
    if target_vm is None:
        return f"Restored {len(jobs)} disk(s) as floating disks: " + ", ".join(j.name for j in jobs) + "."
    return attach_to_vm(run, target_vm, [(job.name, job.disk_id, _interface(config, job.source.id))
                                         for job in jobs])


def _disk_job(run: RestoreRun, disk_id: str, config, placement: Placement):
    """The disk to make for source disk ``disk_id``, on a storage domain ``placement`` can use."""
    index = manifest_disk(run.manifest, disk_id)
    ovf_disk = config.disks.get(disk_id) if config else None
    source_name = (ovf_disk.alias if ovf_disk else "") or index.name or disk_id[:8]
    chosen = run.request.storage_domain
    domain = (placement.chosen(chosen) if chosen
              else placement.source(source_domain(run, disk_id, placement), source_name))
    return disk_job(run, index, ovf_disk, domain, f"{source_name}_restored")


def _interface(config, disk_id: str) -> str:
    """The interface the source disk had (virtio_scsi when the restore point has no OVF)."""
    ovf_disk = config.disks.get(disk_id) if config else None
    return ovf_disk.interface if ovf_disk else "virtio_scsi"


def _ovf_or_none(run: RestoreRun):
    try:
        return read_ovf(run.manifest.read_ovf(run.point.repository.repository_key()))
    except (RestoreError, StoreError):
        return None


def _cluster_row(run: RestoreRun, vm):
    """The cluster whose workers upload: the target VM's, else the source VM's when it is of this
    manager (another's, an oVirt DR site's, has no workers here)."""
    if vm is not None and vm.cluster_id:
        return inventory_cluster(run, vm.cluster_id)
    point_vm = run.point.vm
    return point_vm.cluster if point_vm is not None and point_vm.manager_id == run.manager.pk else None


def cleanup(run: RestoreRun) -> None:
    """Remove what the session created (never the original VM); log what couldn't be removed."""
    if run.engine is None:
        return
    if run.past_point_of_no_return:
        run.session.warn("The engine is removing or has removed the original VM: the restored VM and its "
                         "disks are kept.")
        return
    created = run.created
    if created.transfers or created.vms or created.disks:
        run.log("Removing what this restore created.")
    for transfer_id in list(created.transfers):
        _quietly(run, f"cancel transfer {transfer_id}", lambda t=transfer_id: _cancel_transfer(run, t))
    for vm_id in list(created.vms):
        _quietly(run, f"remove VM {vm_id}", lambda v=vm_id: _remove_vm(run, v))
    for disk_id in list(created.disks):
        _quietly(run, f"remove disk {disk_id}", lambda d=disk_id: _remove_disk(run, d))
    run.remember()


def _cancel_transfer(run: RestoreRun, transfer_id: str) -> None:
    ovirt.cancel_transfer(run.engine, transfer_id)
    ovirt.wait_transfer_ended(run.engine, transfer_id, timeout=run.wait_timeout)
    run.created.transfers.remove(transfer_id)


def _remove_vm(run: RestoreRun, vm_id: str) -> None:
    ovirt.remove_vm(run.engine, vm_id, timeout=run.wait_timeout)  # with the restored disks attached to it
    run.created.vms.remove(vm_id)


def _remove_disk(run: RestoreRun, disk_id: str) -> None:
    ovirt.remove_disk(run.engine, disk_id, timeout=run.wait_timeout)
    run.created.disks.remove(disk_id)


def _quietly(run: RestoreRun, what: str, action) -> None:
    try:
        action()
    except Exception as exc:  # noqa: BLE001 — one failed removal must not stop the others
        run.session.error(f"Could not {what}: {exc}; remove it by hand (its description starts "
                          f"with {ovirt.description_tag(run.session.pk)}).")


def _finish(run: RestoreRun | None, state: str, summary: str) -> tuple[str, str]:
    if run is not None and run.past_point_of_no_return:
        # Succeeded, or failed once the original's removal was accepted: the engine's VMs changed.
        # Jobs that chose the original follow the VM in its place once the inventory has it.
        _request_inventory_sync(run)
    if run is not None and run.task is not None:
        TaskSession.objects.filter(pk=run.task.pk).update(
            state=state, finished=timezone.now(), error="" if state in DONE_STATES else summary,
            **({"progress": 100.0} if state in DONE_STATES else {}))
    return state, summary[:2000]


def _request_inventory_sync(run: RestoreRun) -> None:
    # The restored VM and disks show in the inventory without waiting for the next sync.
    try:
        from inventory.services import request_sync

        request_sync(run.manager)
    except Exception as exc:  # noqa: BLE001 — the restore succeeded; a sync can be run by hand
        log.warning("inventory sync after restore session %s not requested: %s", run.session.pk, exc)
