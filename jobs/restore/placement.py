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
from plugin.errors import EngineTimeout

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
    attaching them later is one step by hand.
    """
    names = ", ".join(name for name, _, _ in disks)
    try:
        vm = ovirt.wait_vm_status(run.engine, vm.id, ATTACHABLE_STATES, timeout=run.wait_timeout,
                                  should_stop=run.should_stop)
    except EngineTimeout as exc:
        run.session.warn(f"The disks were not attached to VM {vm.name}: {exc} They are restored as floating "
                         f"disks ({names}): attach them once the VM is up, paused or down.")
        return f"Restored {len(disks)} disk(s) as floating disks: {names}; VM {vm.name} could not take them."
    inactive = []
    for name, disk_id, interface in disks:
        active = plugged(vm.status, interface)
        ovirt.attach_disk(run.engine, vm.id, disk_id, interface=interface, bootable=False, active=active)
        if not active:
            inactive.append(f"{name} ({interface})")
    if inactive:
        run.session.warn(f"VM {vm.name} is {vm.status} and the engine hot plugs disks only on VirtIO or "
                         f"VirtIO-SCSI: {', '.join(inactive)} attached inactive. Activate them once the VM "
                         "is shut down.")
    return f"Restored {len(disks)} disk(s) and attached them to VM {vm.name}."
