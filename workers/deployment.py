"""Deploy, start, stop, redeploy and remove worker VMs through the engine facade (plugin/).

A deployment creates the worker VM in its cluster (from the named template, or
Blank with a boot disk on the chosen storage domain), with the cloud-init
payload that makes it a runner, starts it, has the launcher bring its runner
alive, and waits for the first heartbeat. Every step updates the worker's
state, and a failure leaves the worker "failed" with the reason. A deployment
that fails in the engine removes what it made there; a VM whose runner never
reported in is kept for the administrator to look into (wait_ready).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from plugin import engine as ovirt
from plugin import placement
from plugin.errors import EngineError, EngineTimeout, NotFound
from workers import launchers
from workers.choices import DISK_TASK_ACTIVE_STATES, DiskTaskState, Launcher, WorkerState
from workers.models import Worker

log = logging.getLogger(__name__)

MIB = 1024 * 1024
GIB = 1024 * MIB
BOOT_DISK_SIZE = 20 * GIB
READY_TIMEOUT = 600.0  # seconds from VM up to the runner's first heartbeat
REMOVAL_TIMEOUT = 600.0  # seconds for a VM or disk to stop, unlock and go


class DeploymentError(Exception):
    """A worker could not be deployed, started or stopped; the message says why."""


def vm_name(worker: Worker) -> str:
    return f"vbr-worker-{worker.name}"


@contextmanager
def _engine(worker: Worker):
    with ovirt.connect(worker.manager.credentials(), timeout=settings.VBR_ENGINE_TIMEOUT) as engine:
        yield engine


def _set(worker: Worker, state: str, error: str = "") -> None:
    worker.state, worker.last_error = state, error
    Worker.objects.filter(pk=worker.pk).update(state=state, last_error=error)


@contextmanager
def _failing(worker: Worker, what: str, aftermath: Callable[[], str] | None = None):
    """Mark the worker failed with the reason when the block raises; ``aftermath()``
    adds what became of what the block had made in the engine."""
    def with_aftermath(reason: str) -> str:
        after = aftermath() if aftermath else ""
        return f"{reason.rstrip('.')}. {after}" if after else reason

    try:
        yield
    except (EngineError, placement.PlacementError) as exc:
        reason = with_aftermath(str(exc))
        _set(worker, WorkerState.FAILED, f"{what} failed: {reason}")
        log.warning("worker %s: %s failed: %s", worker.name, what, reason)
        raise DeploymentError(f"{what} of worker {worker.name} failed: {reason}") from exc
    except BaseException as exc:  # Ctrl-C, a runner stopping: the error still says what was left
        _set(worker, WorkerState.FAILED, f"{what} failed: {with_aftermath(str(exc) or type(exc).__name__)}")
        raise


@dataclass
class _Made:
    """What a deployment has made in the engine so far: a failure removes all of it."""

    vm_id: str = ""
    # Disks not attached to the VM (yet): removing the VM doesn't take them along.
    floating: dict[str, str] = field(default_factory=dict)
    outcome: str = "Nothing was created in the engine."  # what became of it, for the worker's error
    keep_vm: bool = False  # still being cloned: deleting it would wait for the clone as well


def deploy(worker: Worker, *, wait: bool = True, timeout: float = READY_TIMEOUT) -> Worker:
    """Create and start the worker's VM, bring its runner alive, wait for its first heartbeat.

    Its boot disk's storage domain and its vNIC profile are checked against the data
    center of its cluster first: nothing is created when either is elsewhere. When a
    later step fails, what was made (the VM, its disks) is removed from the engine.
    A runner that never reports in is not such a failure: see wait_ready.
    """
    return _deploy(worker, _Made(), wait=wait, timeout=timeout)


def _deploy(worker: Worker, made: _Made, *, wait: bool, timeout: float) -> Worker:
    _set(worker, WorkerState.DEPLOYING)
    with _failing(worker, "deployment", lambda: made.outcome), _engine(worker) as engine:
        try:
            _create_and_start(engine, worker, made)
        except BaseException:  # Ctrl-C too: what was made is only known here
            _remove_made(engine, worker, made)
            raise
    return wait_ready(worker, timeout) if wait else worker


def _create_and_start(engine, worker: Worker, made: _Made) -> None:
    profile_id = _checked_placement(engine, worker)
    try:
        vm = ovirt.create_vm(engine, _spec(worker))
    except EngineError as exc:
        if exc.code is None:  # no answer: the engine may have made it all the same
            _adopt_vm(engine, worker, made)
        raise
    _record_vm(worker, made, vm.id)
    _wait_cloned(engine, worker, made)
    if profile_id:
        ovirt.add_nic(engine, vm.id, name="nic1", vnic_profile_id=profile_id)
    if _needs_boot_disk(worker):
        _add_boot_disk(engine, worker, made)
    _power_on(engine, worker, first_boot=True)


def _record_vm(worker: Worker, made: _Made, vm_id: str) -> None:
    made.vm_id = worker.engine_vm_id = vm_id
    Worker.objects.filter(pk=worker.pk).update(engine_vm_id=vm_id)


def _adopt_vm(engine, worker: Worker, made: _Made) -> None:
    """Take on the worker's VM that a create_vm without an answer may have made, if it is there."""
    try:
        vm = _our_vm(engine, worker)
    except EngineError as exc:
        made.outcome = (f"The engine may have created its VM {vm_name(worker)} all the same (looking for it "
                        f"failed: {exc}): if it is there, Remove the worker (manage.py remove_worker "
                        f"{worker.name}) to delete it.")
        return
    if vm is not None:
        _record_vm(worker, made, vm.id)


def _our_vm(engine, worker: Worker):
    """The VM named after the worker, only if its description marks it as this worker's."""
    vm = ovirt.find_vm(engine, vm_name(worker))
    return vm if vm is not None and vm.description == _spec(worker).description else None


def _our_floating_boot_disk(engine, worker: Worker) -> dict[str, str]:
    """{id: name} of the boot disk a deployment of this worker made and never attached, if just one."""
    attached = {a.disk_id for vm in ovirt.list_vms(engine) for a in vm.disk_attachments}
    ours = [d for d in ovirt.list_disks(engine) if d.name == _boot_disk_name(worker)
            and d.description == _boot_disk_description(worker) and d.id not in attached]
    return {ours[0].id: ours[0].name} if len(ours) == 1 else {}


def _wait_cloned(engine, worker: Worker, made: _Made) -> None:
    """Wait until the VM is down: one made from a template is image_locked until its disks are cloned."""
    timeout = settings.VBR_ENGINE_WAIT_TIMEOUT
    try:
        ovirt.wait_vm_status(engine, made.vm_id, {"down"}, timeout=timeout)
    except EngineTimeout:
        # Deleting it would wait for the clone too, and a retry would start another one.
        made.keep_vm = True
        made.outcome = (f"Its VM {vm_name(worker)} is kept: the engine was still copying the disks of "
                        f"template {worker.template} after {timeout} s (VBR_ENGINE_WAIT_TIMEOUT). Once that "
                        f"ends, Redeploy the worker, or Remove it (manage.py remove_worker {worker.name}).")
        raise


def _remove_made(engine, worker: Worker, made: _Made) -> None:
    """Remove what a failed deployment made: the VM with its disks, then disks never attached.

    Never raises: the deployment's own failure is what the administrator needs to read;
    ``made.outcome`` says what was removed, and what is left and how to remove it.
    """
    if (not made.vm_id or made.keep_vm) and not made.floating:
        return
    launchers.stop_local_runner(worker)
    removed, left = [], []
    if made.vm_id and not made.keep_vm:
        try:
            ovirt.remove_vm(engine, made.vm_id, timeout=REMOVAL_TIMEOUT)
        except EngineError as exc:
            log.warning("worker %s: removing its VM %s failed: %s", worker.name, made.vm_id, exc)
            left.append(f"its VM {vm_name(worker)} could not be removed ({exc}): Remove the worker "
                        f"(or run manage.py remove_worker {worker.name}) to delete the VM with its disks")
        else:
            removed.append(f"VM {vm_name(worker)} with its disks")
            Worker.objects.filter(pk=worker.pk).update(engine_vm_id="")
            worker.engine_vm_id = ""
    for disk_id, name in made.floating.items():
        try:
            if ovirt.remove_disk(engine, disk_id, timeout=REMOVAL_TIMEOUT):  # else it went with the VM
                removed.append(f"disk {name} (not attached yet)")
        except EngineError as exc:
            log.warning("worker %s: removing disk %s failed: %s", worker.name, disk_id, exc)
            left.append(f"disk {name} (id {disk_id}) could not be removed ({exc}): delete it in the engine")
    made.outcome = _outcome(removed, left, made.outcome if made.keep_vm else "")


def _outcome(removed: list[str], left: list[str], kept: str = "") -> str:
    said = [kept] if kept else []
    said += [f"Removed what it had created in the engine: {' and '.join(removed)}."] if removed else []
    if left:
        return " ".join([*said, f"Left in the engine: {'; '.join(left)}."])
    if kept:
        return " ".join(said)
    return " ".join([*said, "Start deploys the worker again once the cause is fixed."])


def _needs_boot_disk(worker: Worker) -> bool:
    return worker.template == "Blank" and bool(worker.storage_domain_id)


def _checked_placement(engine, worker: Worker) -> str | None:
    """The vNIC profile for the worker's NIC (None: no NIC), once it and the boot disk's storage
    domain are known to be of the data center of the worker's cluster.

    The engine refuses a NIC on another data center's network, and a disk of another data
    center's storage domain, only once the VM is made (the disk when it is attached);
    a network name (ovirtmgmt is in every data center) picks the profile of the worker's.
    """
    cluster = placement.find_cluster(engine, worker.cluster.engine_id)
    if _needs_boot_disk(worker):
        placement.Placement.for_cluster(engine, cluster).chosen(worker.storage_domain.engine_id)
    if not worker.vnic_profile:
        return None
    return placement.vnic_profile(engine, worker.vnic_profile, cluster.data_center_id)


def _spec(worker: Worker) -> ovirt.VmSpec:
    return ovirt.VmSpec(
        name=vm_name(worker), cluster_id=worker.cluster.engine_id, memory=worker.memory * MIB,
        cpus=worker.cpus, template=worker.template or "Blank",
        description=f"Backup worker {worker.name} (ovirt-backup-server); queue {worker.queue}",
        host_id=worker.preferred_host.engine_id if worker.preferred_host_id else None,
        host_name=vm_name(worker),
    )


def _add_boot_disk(engine, worker: Worker, made: _Made) -> None:
    try:
        disk = ovirt.create_disk(engine, name=_boot_disk_name(worker),
                                 storage_domain_id=worker.storage_domain.engine_id,
                                 provisioned_size=BOOT_DISK_SIZE, format="cow", sparse=True,
                                 description=_boot_disk_description(worker))
    except EngineError as exc:
        if exc.code is None:  # no answer: the engine may have made it all the same
            with suppress(EngineError):  # the deployment's failure is what to report
                made.floating.update(_our_floating_boot_disk(engine, worker))
        raise
    made.floating[disk.id] = disk.name
    ovirt.wait_disk_ok(engine, disk.id)
    ovirt.attach_disk(engine, worker.engine_vm_id, disk.id, interface="virtio_scsi", bootable=True)
    del made.floating[disk.id]  # it goes with the VM now


def _boot_disk_name(worker: Worker) -> str:
    return f"{vm_name(worker)}-boot"


def _boot_disk_description(worker: Worker) -> str:
    return f"Boot disk of backup worker {worker.name}"


def _power_on(engine, worker: Worker, first_boot: bool = False) -> None:
    """Start the VM, wait until the engine reports it up, and launch the runner."""
    _set(worker, WorkerState.STARTING)
    vm = ovirt.get_vm(engine, worker.engine_vm_id)
    if vm.status != "up":
        # Until its runner has beaten once, every start carries the payload: a worker
        # whose runner never reported in, stopped and started again, must not run nothing.
        never_ran = first_boot or worker.last_heartbeat is None
        cloud_init = never_ran and launchers.launcher() == Launcher.CLOUD_INIT
        # The script holds the server's database URL and keys: it goes with this one
        # start, and cloud-init keeps what it wrote on the worker's own disk.
        ovirt.start_vm(engine, worker.engine_vm_id, host_name=vm_name(worker),
                       cloud_init_script=launchers.cloud_init_user_data(worker) if cloud_init else "")
        ovirt.wait_vm_status(engine, worker.engine_vm_id, {"up"}, timeout=600)
    if launchers.launcher() == Launcher.LOCAL:
        launchers.start_local_runner(worker)


def wait_ready(worker: Worker, timeout: float = READY_TIMEOUT) -> Worker:
    """Wait for the runner's first heartbeat (state ready); failed after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        worker.refresh_from_db()
        if worker.state in (WorkerState.READY, WorkerState.BUSY):
            return worker
        if worker.state != WorkerState.STARTING:
            raise DeploymentError(f"worker {worker.name} is {worker.state}: {worker.last_error}")
        time.sleep(0.5)
    # The VM is kept: it booted, and only its runner can't reach the backup server (a wrong
    # VBR_WORKER_DATABASE_URL, a firewall), which the administrator can see only in the VM.
    _set(worker, WorkerState.FAILED,
         f"no heartbeat from the runner within {timeout:.0f} s of the VM being up: check that "
         "the VM reaches the backup server's database and broker, and its vbr-worker service log. "
         f"Its VM {vm_name(worker)} is kept running for that: once the cause is fixed, Redeploy the "
         f"worker; or Remove it (manage.py remove_worker {worker.name}) to delete the VM and its disks.")
    raise DeploymentError(worker.last_error)


def start(worker: Worker, *, wait: bool = True, timeout: float = READY_TIMEOUT) -> Worker:
    """Power a stopped worker on and wait for its runner."""
    if not worker.engine_vm_id:
        return deploy(worker, wait=wait, timeout=timeout)
    if worker.state == WorkerState.FAILED and worker.last_error.startswith("deployment failed"):
        # Its VM is what a failed deployment left (no NIC or boot disk, perhaps): powering it on
        # would wait for a runner that can't come.
        raise DeploymentError(f"worker {worker.name} has the VM {vm_name(worker)} that its failed "
                              "deployment left in the engine: Redeploy or Remove the worker instead")
    with _failing(worker, "start"), _engine(worker) as engine:
        _power_on(engine, worker)
    return wait_ready(worker, timeout) if wait else worker


def stop(worker: Worker, *, force: bool = False) -> Worker:
    """Stop the runner and power the VM off; refused while it runs tasks unless ``force``.

    The disks queued for it go to other workers first (refused or not); one its
    runner takes meanwhile counts as running.
    """
    begin_stop(worker, force=force)
    shut_down(worker)
    return worker


def begin_stop(worker: Worker, *, force: bool = False) -> None:
    """The database half of a stop: mark the worker stopping and move its disks elsewhere.

    Raises DeploymentError, the worker left busy, when it runs disks and ``force``
    isn't given; with ``force`` its running disks are sent again to other workers
    (its runner exits at its next heartbeat). A stop asked for from the pages
    does this in the request: done later on the control runner, which long
    sessions can hold for hours, a disk taken meanwhile died with the runner
    and the disks queued for the worker waited for no runner.
    """
    running = _mark_stopping(worker, force)
    if running and not force:
        raise DeploymentError(f"worker {worker.name} is moving {running} disk(s): wait until they "
                              "finish, or stop it anyway (their sessions fail those disks)")


def _mark_stopping(worker: Worker, force: bool) -> int:
    """Mark the worker stopping and hand its queued disks over; how many disks it runs.

    When it runs some and ``force`` isn't given, it stays busy instead; with
    ``force`` they are handed over too. All under the lock that choosing a
    worker takes: a disk chosen for it just before exists when it is counted,
    none is chosen for it after, and its runner can no longer take a queued
    disk once that went elsewhere. (Counted before the mark and the handover,
    a disk the runner took in between was killed mid-run with the runner and
    sent again, at the cost of an attempt.)
    """
    from workers import dispatch

    with dispatch.locked_workers(worker.manager_id):
        _set(worker, WorkerState.STOPPING)
        dispatch.lock_tasks(worker.disk_tasks.filter(state__in=DISK_TASK_ACTIVE_STATES))
        _hand_over_tasks(worker, states=(DiskTaskState.PENDING,))
        running = worker.disk_tasks.filter(state=DiskTaskState.RUNNING).count()
        if running and not force:
            _set(worker, WorkerState.BUSY)  # it goes on serving the tasks it has
        elif running:
            _hand_over_tasks(worker, states=(DiskTaskState.RUNNING,))
    return running


def shut_down(worker: Worker) -> None:
    """End the runner of a worker marked stopping, move what it still held, power the VM off."""
    launchers.stop_local_runner(worker)
    _hand_over_tasks(worker)
    if worker.engine_vm_id:
        with _failing(worker, "stop"), _engine(worker) as engine:
            try:
                ovirt.ensure_vm_down(engine, worker.engine_vm_id)
            except NotFound:
                pass  # the VM is gone already: nothing to stop
    _set(worker, WorkerState.STOPPED)
    Worker.objects.filter(pk=worker.pk).update(idle_since=None)


def _hand_over_tasks(worker: Worker, states=DISK_TASK_ACTIVE_STATES) -> None:
    """Send the disks queued for (or forced off) a stopping worker to other workers."""
    from workers import dispatch

    for task in worker.disk_tasks.filter(state__in=states).select_related("worker", "manager"):
        dispatch.resend(task, f"worker {worker.name} was stopped", exclude=(worker.pk,))


def remove(worker: Worker, *, force: bool = False) -> None:
    """Stop the worker, delete its VM and disks in the engine, and forget it."""
    stop(worker, force=force)
    _delete(worker)


def remove_stopping(worker: Worker) -> None:
    """The engine half of a removal whose stop began already (begin_stop): shut down, delete."""
    shut_down(worker)
    _delete(worker)


def _delete(worker: Worker) -> None:
    with _failing(worker, "removal"), _engine(worker) as engine:
        _remove_from_engine(engine, worker)
    worker.delete()


def _remove_from_engine(engine, worker: Worker) -> None:
    """Delete the worker's VM with its disks, and a boot disk of it never attached.

    A deployment killed, or without the engine's answer, may have left either
    without recording it: they are found by name when marked as this worker's.
    """
    vm_id = worker.engine_vm_id
    if not vm_id:
        vm = _our_vm(engine, worker)
        vm_id = vm.id if vm is not None else ""
    if vm_id:
        ovirt.remove_vm(engine, vm_id, timeout=REMOVAL_TIMEOUT)
    for disk_id in _our_floating_boot_disk(engine, worker):
        ovirt.remove_disk(engine, disk_id, timeout=REMOVAL_TIMEOUT)


def redeploy(worker: Worker, *, wait: bool = True, timeout: float = READY_TIMEOUT) -> Worker:
    """Replace the worker VM with a new one (a new software version), keeping its settings."""
    stop(worker)
    had_vm = bool(worker.engine_vm_id)
    with _failing(worker, "redeployment"), _engine(worker) as engine:
        _remove_from_engine(engine, worker)
    Worker.objects.filter(pk=worker.pk).update(engine_vm_id="", software_version="")
    worker.engine_vm_id = ""
    made = _Made()
    if had_vm:
        made.outcome = f"Its old VM {vm_name(worker)} was deleted; no new one was created in the engine."
    return _deploy(worker, made, wait=wait, timeout=timeout)


def stop_idle_workers(now=None) -> list[str]:
    """Stop deployed workers idle longer than VBR_WORKER_IDLE_MINUTES (0: never)."""
    minutes = settings.VBR_WORKER_IDLE_MINUTES
    if minutes <= 0:
        return []
    limit = (now or timezone.now()) - timedelta(minutes=minutes)
    stopped = []
    for worker in Worker.objects.filter(state=WorkerState.READY, idle_since__lt=limit):
        if not _mark_idle_stopping(worker, limit):
            continue
        try:
            shut_down(worker)
            stopped.append(worker.name)
        except (DeploymentError, EngineError) as exc:
            log.warning("stopping idle worker %s failed: %s", worker.name, exc)
    return stopped


def _mark_idle_stopping(worker: Worker, limit) -> bool:
    """Mark the worker stopping if it is still ready, idle since before ``limit`` and without a disk.

    Under the lock that choosing a worker takes, marked before its disks are
    counted: a disk chosen for it before the mark is counted, none is chosen
    after. (Counted first, a disk chosen and taken by its runner in between
    was killed mid-run with the runner and sent again, at the cost of an
    attempt.) Nothing else sees the mark taken back: the lock holds them off.
    """
    from workers import dispatch

    with dispatch.locked_workers(worker.manager_id):
        if not Worker.objects.filter(pk=worker.pk, state=WorkerState.READY, idle_since__lt=limit).update(
                state=WorkerState.STOPPING):
            return False  # it took a disk, or was stopped, since it was read
        if worker.active_tasks().exists():
            Worker.objects.filter(pk=worker.pk).update(state=WorkerState.READY)
            return False
    worker.state = WorkerState.STOPPING
    return True
