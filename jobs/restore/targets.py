"""Finding in the engine what a restore request names: clusters, storage domains, VMs, vNIC profiles.

Each may be given as the engine's id or by name; the error lists what exists.
Storage domains are resolved and checked against the target's data center in placement.py.
"""

from __future__ import annotations

from jobs.restore.points import RestoreError
from plugin import engine as ovirt
from plugin.errors import EngineError, NotFound


def pick(items, value: str, what: str):
    """The item with this id, or the only one with this name; RestoreError naming what exists."""
    for item in items:
        if item.id == value:
            return item
    named = [item for item in items if item.name == value]
    if len(named) == 1:
        return named[0]
    names = ", ".join(sorted(item.name for item in items)) or "none"
    if named:
        raise RestoreError(f"several {what}s are named {value!r}: give the id")
    raise RestoreError(f"there is no {what} {value!r} in the engine (it has: {names})")


def cluster(engine, value: str):
    """The cluster with this id or name."""
    return pick(ovirt.list_clusters(engine), value, "cluster")


def data_domains(engine) -> list:
    """Every data storage domain (the kind disks are created on)."""
    return [sd for sd in ovirt.list_storage_domains(engine) if sd.type in ("", "data")]



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


def _networks(engine, data_center_id: str | None) -> dict[str, str]:
    """Network id → name, of the data center given (every data center has its own ovirtmgmt)."""
    return {n.id: n.name for n in ovirt.list_networks(engine)
            if data_center_id is None or n.data_center_id in (None, data_center_id)}


def vnic_profiles_by_network(engine, data_center_id: str | None = None) -> dict[str, str]:
    """Network name → the vNIC profile to plug a restored NIC into (the profile named as its network first).

    With ``data_center_id`` (the target cluster's), only that data center's networks count.
    """
    networks = _networks(engine, data_center_id)
    chosen: dict[str, str] = {}
    for profile in ovirt.list_vnic_profiles(engine):
        network = networks.get(profile.network_id or "")
        if network and (network not in chosen or profile.name == network):
            chosen[network] = profile.id
    return chosen


def vnic_profile(engine, value: str, data_center_id: str | None = None) -> str:
    """The vNIC profile with this id or name (a network's name picks its profile).

    With ``data_center_id``, only profiles of that data center's networks: a name
    that exists in two data centers picks the target cluster's.
    """
    networks = _networks(engine, data_center_id)
    profiles = [p for p in ovirt.list_vnic_profiles(engine)
                if data_center_id is None or (p.network_id or "") in networks]
    for profile in profiles:
        if profile.id == value:
            return profile.id
    by_network = vnic_profiles_by_network(engine, data_center_id)
    named = [p for p in profiles if p.name == value]
    if len(named) == 1:
        return named[0].id
    if value in by_network:
        return by_network[value]
    names = ", ".join(sorted({p.name for p in profiles})) or "none"
    where = "the target cluster's data center" if data_center_id else "the engine"
    raise RestoreError(f"there is no vNIC profile or network {value!r} in {where} (profiles: {names})")
