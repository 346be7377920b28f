"""Finding in the engine the VMs and disks a restore request names, or that it restores.

Clusters, storage domains and vNIC profiles, resolved and checked against the
target's data center, are plugin.placement's (worker deployments use them too).
"""

from __future__ import annotations

from jobs.restore.points import RestoreError
from plugin import engine as ovirt
from plugin.errors import EngineError, NotFound


def vm(engine, value: str):
    """The VM with this id or name."""
    try:
        return ovirt.get_vm(engine, value)
    except EngineError:
        pass  # not an id (or not a VM's): look it up by name
    found = ovirt.find_vm(engine, value)
    if found is None:
        raise RestoreError(f"there is no VM {value!r} in the engine: give its name or id")
    return found


def existing_vm(engine, vm_id: str):
    """The VM with this id, or None when the engine no longer has it."""
    try:
        return ovirt.get_vm(engine, vm_id)
    except NotFound:
        return None


def existing_disk(engine, disk_id: str):
    """The disk with this id, or None when the engine no longer has it."""
    try:
        return ovirt.get_disk(engine, disk_id)
    except NotFound:
        return None
