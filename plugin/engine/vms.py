"""Disks and VMs the project creates: restored disks and VMs, and worker VMs."""

from __future__ import annotations

import time
from dataclasses import dataclass

import ovirtsdk4 as sdk
from ovirtsdk4 import types

from plugin.engine import convert
from plugin.engine.connection import Engine
from plugin.engine.inventory import get_disk, get_vm
from plugin.engine.records import DiskAttachmentInfo, DiskInfo, NicInfo, VmInfo
from plugin.engine.waiting import ShouldStop, wait_for
from plugin.errors import NotFound, OperationFailed, is_not_found, translated

GIB = 1024**3
MIB = 1024**2


def _system(engine: Engine):
    return engine.sdk.system_service()


def _vm_service(engine: Engine, vm_id: str):
    return _system(engine).vms_service().vm_service(vm_id)


# Disks


@translated("creating a disk")
def create_disk(engine: Engine, *, name: str, storage_domain_id: str, provisioned_size: int,
                format: str = "cow", sparse: bool = True, description: str = "",
                backup_incremental: bool = False, initial_size: int | None = None) -> DiskInfo:
    """Create a floating disk (status "locked" at first; use wait_disk_ok).

    ``format`` "cow" (qcow2) or "raw"; raw on block storage can't be sparse.
    ``backup_incremental`` enables incremental backup (qcow2 only).
    """
    disk = types.Disk(
        name=name, alias=name, description=description, format=types.DiskFormat(format),
        sparse=sparse, provisioned_size=provisioned_size, initial_size=initial_size,
        storage_domains=[types.StorageDomain(id=storage_domain_id)],
        backup=types.DiskBackup.INCREMENTAL if backup_incremental else types.DiskBackup.NONE,
        content_type=types.DiskContentType.DATA,
    )
    return convert.disk(_system(engine).disks_service().add(disk))


def wait_disk_ok(engine: Engine, disk_id: str, *, timeout: float = 600,
                 should_stop: ShouldStop = None) -> DiskInfo:
    """Wait until the disk's status is "ok"; OperationFailed if it turns "illegal"."""
    disk = wait_for(lambda: get_disk(engine, disk_id), lambda d: d.status in ("ok", "illegal"),
                    timeout=timeout, what=f"disk {disk_id} to be ready",
                    describe=lambda d: f"status {d.status or 'unknown'}", should_stop=should_stop)
    if disk.status != "ok":
        raise OperationFailed(f"Disk {disk.name or disk_id} is {disk.status}.")
    return disk


@translated("deleting a disk")
def delete_disk(engine: Engine, disk_id: str) -> None:
    """Delete a disk (with its data); gone already is fine."""
    try:
        _system(engine).disks_service().disk_service(disk_id).remove()
    except sdk.Error as exc:
        if not is_not_found(exc):
            raise


def wait_disk_gone(engine: Engine, disk_id: str, *, timeout: float = 300) -> None:
    """Wait until the disk no longer exists."""
    def gone() -> bool:
        try:
            get_disk(engine, disk_id)
            return False
        except NotFound:
            return True

    wait_for(gone, bool, timeout=timeout, what=f"disk {disk_id} to be deleted",
             describe=lambda _: "still there")


# VMs


@translated("creating a VM from an OVF")
def create_vm_from_ovf(engine: Engine, *, ovf: str, name: str, cluster_id: str,
                       description: str | None = None, new_ids: bool = True) -> VmInfo:
    """Create a VM from an OVF (as get_vm_ovf returned it), named ``name`` in the cluster.

    The OVF brings CPUs, memory, OS, boot order and the rest of the configuration;
    disks and NICs are attached afterwards (attach_disk, add_nic). ``new_ids``
    (the engine's ``initialization.regenerate_ids``) gives the VM and its devices
    new ids; False keeps the OVF's, which only works when that VM no longer
    exists (restoring a deleted VM). Disks named in the OVF that exist and are
    free are attached by the engine.
    """
    vm = types.Vm(
        name=name, cluster=types.Cluster(id=cluster_id), description=description,
        initialization=types.Initialization(regenerate_ids=new_ids, configuration=types.Configuration(
            type=types.ConfigurationType.OVF, data=ovf)),
    )
    return convert.vm(_system(engine).vms_service().add_from_configuration(vm))


@dataclass(frozen=True)
class VmSpec:
    """A VM to create from a template ("Blank" for an empty one).

    ``host_id`` pins the VM to a host. A cloud-init script is given to start_vm,
    for one run, never stored with the VM.
    """

    name: str
    cluster_id: str
    memory: int = 2 * GIB
    cpus: int = 2
    template: str = "Blank"
    description: str = ""
    os_type: str = "other_linux"
    host_id: str | None = None
    host_name: str = ""
    authorized_ssh_keys: str = ""


@translated("creating a VM")
def create_vm(engine: Engine, spec: VmSpec) -> VmInfo:
    """Create a VM from a template (VM status "image_locked" or "down" at first)."""
    initialization = None
    # The cloud-init script is not stored with the VM (engine users who may read the VM
    # could read it): start_vm gives it for the first run only.
    if spec.host_name or spec.authorized_ssh_keys:
        initialization = types.Initialization(
            host_name=spec.host_name or spec.name, authorized_ssh_keys=spec.authorized_ssh_keys or None,
        )
    placement = None
    if spec.host_id:
        placement = types.VmPlacementPolicy(hosts=[types.Host(id=spec.host_id)])
    vm = types.Vm(
        name=spec.name, cluster=types.Cluster(id=spec.cluster_id),
        template=types.Template(name=spec.template), description=spec.description,
        memory=spec.memory, memory_policy=types.MemoryPolicy(guaranteed=spec.memory),
        cpu=types.Cpu(topology=types.CpuTopology(sockets=1, cores=spec.cpus, threads=1)),
        os=types.OperatingSystem(type=spec.os_type), initialization=initialization,
        placement_policy=placement,
    )
    return convert.vm(_system(engine).vms_service().add(vm))


@translated("attaching a disk to a VM")
def attach_disk(engine: Engine, vm_id: str, disk_id: str, *, interface: str = "virtio_scsi",
                bootable: bool = False, active: bool = True) -> DiskAttachmentInfo:
    """Attach an existing disk to the VM."""
    attachment = types.DiskAttachment(
        disk=types.Disk(id=disk_id), interface=types.DiskInterface(interface),
        bootable=bootable, active=active,
    )
    service = _vm_service(engine, vm_id).disk_attachments_service()
    return convert.disk_attachment(service.add(attachment))


@translated("detaching a disk from a VM")
def detach_disk(engine: Engine, vm_id: str, disk_id: str) -> None:
    """Detach a disk from the VM, keeping the disk."""
    service = _vm_service(engine, vm_id).disk_attachments_service().attachment_service(disk_id)
    service.remove(detach_only=True)


@translated("adding a NIC to a VM")
def add_nic(engine: Engine, vm_id: str, *, name: str, vnic_profile_id: str | None = None,
            mac: str | None = None, interface: str = "virtio") -> NicInfo:
    """Add a NIC plugged into the vNIC profile; the engine assigns a MAC unless ``mac`` is given."""
    nic = types.Nic(
        name=name, interface=types.NicInterface(interface),
        vnic_profile=types.VnicProfile(id=vnic_profile_id) if vnic_profile_id else None,
        mac=types.Mac(address=mac) if mac else None,
    )
    return convert.nic(_vm_service(engine, vm_id).nics_service().add(nic))


@translated("listing a VM's NICs")
def list_nics(engine: Engine, vm_id: str) -> list[NicInfo]:
    """The VM's NICs."""
    return [convert.nic(n) for n in _vm_service(engine, vm_id).nics_service().list()]


@translated("removing a NIC")
def remove_nic(engine: Engine, vm_id: str, nic_id: str) -> None:
    """Remove one NIC of the VM."""
    _vm_service(engine, vm_id).nics_service().nic_service(nic_id).remove()


@translated("renaming a VM")
def rename_vm(engine: Engine, vm_id: str, name: str) -> VmInfo:
    """Give the VM another name."""
    return convert.vm(_vm_service(engine, vm_id).update(types.Vm(name=name)))


@translated("updating a VM")
def update_vm(engine: Engine, vm_id: str, *, name: str | None = None,
              description: str | None = None) -> VmInfo:
    """Change the VM's name and/or description (None leaves a field as it is)."""
    return convert.vm(_vm_service(engine, vm_id).update(types.Vm(name=name, description=description)))


@translated("starting a VM")
def start_vm(engine: Engine, vm_id: str, *, cloud_init_script: str = "", host_name: str = "") -> None:
    """Power the VM on; with ``cloud_init_script``, run cloud-init with it for this run only.

    The script goes with the start request ("run once"): the engine doesn't keep
    it with the VM, where anyone who may read the VM could read the secrets in it.
    A run-once initialization replaces the stored one for that run: give the host
    name again.
    """
    run_once = None
    if cloud_init_script:
        run_once = types.Vm(initialization=types.Initialization(custom_script=cloud_init_script,
                                                                host_name=host_name or None))
    _vm_service(engine, vm_id).start(use_cloud_init=True if run_once else None, vm=run_once)


@translated("stopping a VM")
def stop_vm(engine: Engine, vm_id: str, *, graceful: bool = False) -> None:
    """Power the VM off (``graceful``: ask the guest to shut down instead)."""
    service = _vm_service(engine, vm_id)
    if graceful:
        service.shutdown()
    else:
        service.stop()


def wait_vm_status(engine: Engine, vm_id: str, statuses: set[str] | frozenset[str], *,
                   timeout: float = 600, should_stop: ShouldStop = None,
                   deadline: float | None = None) -> VmInfo:
    """Wait until the VM's status is one of ``statuses`` ("up", "down", ...).

    ``deadline`` (time.monotonic()) ends the wait earlier, for a deadline shared by several steps.
    """
    return wait_for(lambda: get_vm(engine, vm_id), lambda v: v.status in statuses, timeout=timeout,
                    what=f"VM {vm_id} to be {'/'.join(sorted(statuses))}",
                    describe=lambda v: f"status {v.status or 'unknown'}", should_stop=should_stop,
                    deadline=deadline)


@translated("deleting a VM")
def delete_vm(engine: Engine, vm_id: str, *, keep_disks: bool = False) -> None:
    """Delete the VM, with its disks unless ``keep_disks``; gone already is fine."""
    try:
        _vm_service(engine, vm_id).remove(detach_only=True if keep_disks else None)
    except sdk.Error as exc:
        if not is_not_found(exc):
            raise


def wait_vm_gone(engine: Engine, vm_id: str, *, timeout: float = 600, deadline: float | None = None) -> None:
    """Wait until the VM no longer exists."""
    def gone() -> bool:
        try:
            get_vm(engine, vm_id)
            return False
        except NotFound:
            return True

    wait_for(gone, bool, timeout=timeout, what=f"VM {vm_id} to be deleted",
             describe=lambda _: "still there", deadline=deadline)


# Statuses of a VM that isn't running: the engine refuses to stop it (image_locked while
# its disks are created or cloned, image_illegal once that failed), and there is nothing to stop.
NOT_RUNNING = frozenset({"down", "image_locked", "image_illegal"})


def ensure_vm_down(engine: Engine, vm_id: str, *, timeout: float = 300,
                   deadline: float | None = None) -> VmInfo:
    """Power the VM off if it runs, and wait until it is down.

    A VM that isn't running (NOT_RUNNING: down, image_locked, image_illegal) is
    returned as it is: the engine would refuse to stop it.
    """
    vm = get_vm(engine, vm_id)
    if vm.status not in NOT_RUNNING:
        stop_vm(engine, vm_id)
        vm = wait_vm_status(engine, vm_id, {"down"}, timeout=timeout, deadline=deadline)
    return vm


def remove_vm(engine: Engine, vm_id: str, *, timeout: float = 300) -> bool:
    """Power the VM off, delete it with its disks and wait until it is gone; False when it was gone already.

    The engine neither stops nor deletes a VM while it is image_locked (its disks
    being created or cloned from its template), nor deletes one with a locked disk
    (a snapshot or a disk creation under way): wait until those locks clear first.
    ``timeout`` is for all of it, not for each step.
    """
    deadline = time.monotonic() + timeout
    try:
        _wait_vm_unlocked(engine, vm_id, timeout, deadline)
        ensure_vm_down(engine, vm_id, timeout=timeout, deadline=deadline)
        _wait_disks_unlocked(engine, get_vm(engine, vm_id), timeout, deadline)
    except NotFound:
        return False
    delete_vm(engine, vm_id)
    wait_vm_gone(engine, vm_id, timeout=timeout, deadline=deadline)
    return True


def _wait_vm_unlocked(engine: Engine, vm_id: str, timeout: float, deadline: float) -> VmInfo:
    return wait_for(lambda: get_vm(engine, vm_id), lambda v: v.status != "image_locked",
                    timeout=timeout, what=f"VM {vm_id} to be unlocked",
                    describe=lambda v: f"status {v.status or 'unknown'}", deadline=deadline)


def _wait_disks_unlocked(engine: Engine, vm: VmInfo, timeout: float, deadline: float) -> None:
    for attachment in vm.disk_attachments:
        try:
            wait_for(lambda a=attachment: get_disk(engine, a.disk_id), lambda d: d.status != "locked",
                     timeout=timeout, what=f"disk {attachment.disk_id} of VM {vm.name} to be unlocked",
                     describe=lambda d: f"status {d.status or 'unknown'}", deadline=deadline)
        except NotFound:
            pass  # removed meanwhile: nothing holds the VM


def remove_disk(engine: Engine, disk_id: str, *, timeout: float = 300) -> bool:
    """Delete a disk and wait until it is gone; False when it was gone already.

    The engine refuses to delete a locked disk, and a disk is locked while it is
    created (a cancel or a reconcile can come meanwhile): wait until it is ok,
    or illegal, which is deleted all the same.
    """
    try:
        disk = get_disk(engine, disk_id)
    except NotFound:
        return False
    if disk.status == "locked":
        try:
            wait_disk_ok(engine, disk_id, timeout=timeout)
        except OperationFailed:
            pass
    delete_disk(engine, disk_id)
    wait_disk_gone(engine, disk_id, timeout=timeout)
    return True
