"""Whether a VM can take restored disks now: checked before anything is created.

The engine attaches nothing to a VM that is neither up, paused nor down, and
into a running VM a disk goes by hot plug, which it refuses for IDE and sPAPR
VSCSI disks whatever the guest. Each refusal would come only after the disks
were created and uploaded; this check makes the restore fail first, with nothing
created and a message saying what to do instead. Which storage domains the
disks may go to is plugin.placement's (worker deployments ask it too).
"""

from __future__ import annotations

from jobs.restore.points import RestoreError

ATTACHABLE_STATES = ("up", "paused", "down")
NOT_HOT_PLUGGABLE = ("ide", "spapr_vscsi")


def check_vm_takes_disks(vm, interfaces: dict[str, str]) -> None:
    """RestoreError when the engine would refuse to attach these disks (name → interface) to the VM as it is."""
    if vm.status and vm.status not in ATTACHABLE_STATES:
        raise RestoreError(f"VM {vm.name} is {vm.status.replace('_', ' ')}: the engine attaches disks only "
                           "to a VM that is up, paused or down; restore again once it is")
    cold = sorted(f"{name} ({interface})" for name, interface in interfaces.items()
                  if interface in NOT_HOT_PLUGGABLE)
    if vm.status in ("up", "paused") and cold:
        raise RestoreError(f"VM {vm.name} is {vm.status} and the engine can't hot plug a disk on an IDE or "
                           f"sPAPR VSCSI interface: {', '.join(cold)}. Shut the VM down and restore again, "
                           "or restore the disks floating and attach them on another interface")
