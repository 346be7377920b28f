"""Restored disks into an existing VM: the engine's rules, applied before it would refuse.

The engine attaches disks only to a VM that is up, paused or down. Most other states
pass on their own (migrating, powering up or down, rebooting, image locked by a
snapshot), so the restore waits for one of those three at attach time, after the
upload, rather than refusing at the start. A VM suspended (or saving its state to
be) stays so until someone resumes it: that is refused before anything is created.

Into a running (up or paused) VM a disk goes by hot plug, which the engine does only
on VirtIO and VirtIO-SCSI, whatever the architecture: osinfo's hotpluggableInterfaces
is "VirtIO_SCSI, VirtIO" (x86_64, s390x) and adds SPAPR_VSCSI on ppc64, but the
attach command refuses IDE and sPAPR VSCSI before reading that list. A disk on
another interface (IDE, SATA — q35's default, common on Windows and imported VMs —,
sPAPR VSCSI) is attached inactive, with a warning: the data is where the
administrator asked, and activating it once the VM is shut down is one step.
Refusing instead would mean shutting a production VM down for the whole upload,
or losing the upload to a VM started meanwhile. Which storage domains the disks
may go to is plugin.placement's (worker deployments ask it too).
"""

from __future__ import annotations

from jobs.restore.points import RestoreError
from plugin import engine as ovirt
from plugin.errors import EngineError, EngineTimeout

ATTACHABLE_STATES = frozenset({"up", "paused", "down"})
# States a VM leaves only when someone resumes it: waiting for them would waste the upload.
STUCK_STATES = ("suspended", "saving_state")
HOT_PLUGGABLE = ("virtio", "virtio_scsi")


def check_vm_takes_disks(vm) -> None:
    """RestoreError when the VM is in a state it won't leave on its own (suspended)."""
    if vm.status in STUCK_STATES:
        raise RestoreError(f"VM {vm.name} is {vm.status.replace('_', ' ')}: the engine attaches disks only "
                           "to a VM that is up, paused or down, and a suspended VM stays so until it is "
                           "resumed; resume it or shut it down, then restore again")


def plugged(vm_status: str, interface: str) -> bool:
    """Whether a disk on ``interface`` is attached active: always to a VM that is down, to a
    running one only where the engine hot plugs."""
    return vm_status == "down" or interface in HOT_PLUGGABLE


def attach_to_vm(run, vm, disks: list[tuple[str, str, str]]) -> str:
    """Attach the restored disks (name, disk id, interface) to the VM; the session's summary.

    Waits (VBR_ENGINE_WAIT_TIMEOUT) until the VM is up, paused or down. One that never
    gets there keeps the disks floating, with a warning: the upload is done, and
    attaching them later is one step by hand. So does an attach the engine refuses (the
    VM started after the wait, and the disk can't be hot plugged): the disks attached so
    far stay attached, the rest floating, and none is removed.
    """
    names = ", ".join(name for name, _, _ in disks)
    try:
        vm = ovirt.wait_vm_status(run.engine, vm.id, ATTACHABLE_STATES, timeout=run.wait_timeout,
                                  should_stop=run.should_stop)
    except EngineTimeout as exc:
        run.session.warn(f"The disks were not attached to VM {vm.name}: {exc} They are restored as floating "
                         f"disks ({names}): attach them once the VM is up, paused or down.")
        return f"Restored {len(disks)} disk(s) as floating disks: {names}; VM {vm.name} could not take them."
    attached, inactive, failure = _attach_each(run, vm, disks)
    if inactive:
        run.session.warn(f"VM {vm.name} is {vm.status} and the engine hot plugs disks only on VirtIO or "
                         f"VirtIO-SCSI: {', '.join(inactive)} attached inactive. Activate them once the VM "
                         "is shut down.")
    if failure is not None:
        return _kept_after_refusal(run, vm, disks, attached, failure)
    return f"Restored {len(disks)} disk(s) and attached them to VM {vm.name}."


def _attach_each(run, vm, disks: list[tuple[str, str, str]]) -> tuple[list[str], list[str], EngineError | None]:
    """Attach the disks in order until the engine refuses one: the names attached, those attached
    inactive, and the refusal (None when all went in)."""
    attached, inactive = [], []
    for name, disk_id, interface in disks:
        active = plugged(vm.status, interface)
        try:
            ovirt.attach_disk(run.engine, vm.id, disk_id, interface=interface, bootable=False, active=active)
        except EngineError as exc:
            return attached, inactive, exc
        attached.append(name)
        if not active:
            inactive.append(f"{name} ({interface})")
    return attached, inactive, None


def _kept_after_refusal(run, vm, disks, attached: list[str], failure: EngineError) -> str:
    """Warn that an attach was refused (the VM started meanwhile, say) and keep every disk: the
    upload is done, and the restored data may be the only copy the administrator has."""
    floating = [name for name, _, _ in disks[len(attached):]]
    done = f"attached: {', '.join(attached)}; " if attached else ""
    run.session.warn(f"The engine refused to attach disk {floating[0]} to VM {vm.name}: {failure} The restored "
                     f"disks are kept ({done}left floating: {', '.join(floating)}): attach the floating ones "
                     "by hand — inactive, unless on VirtIO or VirtIO-SCSI, while the VM runs.")
    return (f"Restored {len(disks)} disk(s); {done}left floating: {', '.join(floating)}; "
            f"VM {vm.name} refused them.")
