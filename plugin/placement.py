"""What a VM of a cluster can use in the engine: storage domains and vNIC profiles of its data center.

The engine creates a disk on any data storage domain, but attaches it only to a
VM of a cluster of that domain's data center; and it plugs a NIC only into a vNIC
profile of a network of the VM's data center (each data center has networks of
its own, an ovirtmgmt in every one). Either refusal comes only once the VM, its
disks or its NIC are being made: restores and worker deployments check here
first, so they fail before anything is created, saying what to choose instead.

Each object may be given as the engine's id or by name; the errors list what exists.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from plugin import engine as ovirt


class PlacementError(Exception):
    """What a request names is not in the engine, or not usable where it is meant to go; the
    message says what to choose instead."""


def pick(items, value: str, what: str):
    """The item with this id, or the only one with this name; PlacementError naming what exists."""
    for item in items:
        if item.id == value:
            return item
    named = [item for item in items if item.name == value]
    if len(named) == 1:
        return named[0]
    names = ", ".join(sorted(item.name for item in items)) or "none"
    if named:
        raise PlacementError(f"several {what}s are named {value!r}: give the id")
    raise PlacementError(f"there is no {what} {value!r} in the engine (it has: {names})")


def find_cluster(engine, value: str) -> ovirt.ClusterInfo:
    """The cluster with this id or name."""
    return pick(ovirt.list_clusters(engine), value, "cluster")


# The storage domain types restores and worker deployments create disks on: data ("" when the
# engine leaves the type out). One definition for the engine's answers (below) and the stored
# inventory (inventory.queries, what the forms offer), so no page offers a domain the restore
# refuses: not iso or export, nor image (Glance), volume (Cinder) or managed block storage.
DATA_DOMAIN_TYPES = ("", "data")


def data_domains(engine) -> list[ovirt.StorageDomainInfo]:
    """Every data storage domain (the kind disks are created on)."""
    return [sd for sd in ovirt.list_storage_domains(engine) if sd.type in DATA_DOMAIN_TYPES]


@dataclass
class Placement:
    """The engine's data storage domains, and the data center disks must be usable in.

    ``data_center`` None: floating disks, any data domain will do. ``target`` says what
    is in that data center ("cluster 'Production'"), for the messages.
    """

    domains: list = field(default_factory=list)  # plugin.engine.StorageDomainInfo
    data_center: object = None  # plugin.engine.DataCenterInfo
    target: str = ""

    @classmethod
    def floating(cls, engine) -> Placement:
        """Any data domain: the disks stay floating."""
        return cls(data_domains(engine))

    @classmethod
    def for_cluster(cls, engine, cluster_info) -> Placement:
        """The data domains a VM of this cluster can use: those of the cluster's data center."""
        return cls(data_domains(engine), _data_center(engine, cluster_info.data_center_id),
                   f"cluster {cluster_info.name!r}")

    @classmethod
    def for_vm(cls, engine, vm) -> Placement:
        """The data domains whose disks this VM can take: those of its cluster's data center."""
        if not vm.cluster_id:
            return cls.floating(engine)
        found = find_cluster(engine, vm.cluster_id)
        return cls(data_domains(engine), _data_center(engine, found.data_center_id),
                   f"VM {vm.name!r} (cluster {found.name!r})")

    @property
    def usable(self) -> list:
        """The data domains attached to the data center (all of them when there is none to match)."""
        if self.data_center is None:
            return list(self.domains)
        return [sd for sd in self.domains if self.data_center.id in sd.data_center_ids]

    def chosen(self, value: str) -> str:
        """The id of the storage domain given (id or name); PlacementError when it can't be used."""
        domain = pick(self.domains, value, "storage domain")
        self._check(domain, f"storage domain {domain.name!r} is")
        return domain.id

    def source(self, domain_id: str, disk: str) -> str:
        """``domain_id``, where source disk ``disk`` was; PlacementError when it can't be used."""
        domain = next((sd for sd in self.domains if sd.id == domain_id), None)
        if domain is None:
            raise PlacementError(f"disk {disk} was on a storage domain the engine no longer has: choose a "
                                 f"storage domain for it ({self._usable_names()})")
        self._check(domain, f"disk {disk} was on storage domain {domain.name!r}, which is")
        return domain.id

    def _check(self, domain, subject: str) -> None:
        if domain in self.usable:
            return
        raise PlacementError(f"{subject} not attached to data center {self.data_center.name!r}, where "
                             f"{self.target} is: choose a storage domain of that data center "
                             f"({self._usable_names()})")

    def _usable_names(self) -> str:
        names = sorted(sd.name for sd in self.usable)
        if not names:
            return "it has no data storage domain"
        return "usable there: " + ", ".join(names)


def _data_center(engine, data_center_id: str | None):
    """The data center with this id (its id as its name if the engine doesn't list it); None for None."""
    if not data_center_id:
        return None
    found = next((dc for dc in ovirt.list_data_centers(engine) if dc.id == data_center_id), None)
    return found or ovirt.DataCenterInfo(id=data_center_id, name=data_center_id)


def _networks(engine, data_center_id: str | None) -> dict[str, str]:
    """Network id → name, of the data center given (every data center has its own ovirtmgmt)."""
    return {n.id: n.name for n in ovirt.list_networks(engine)
            if data_center_id is None or n.data_center_id in (None, data_center_id)}


def vnic_profiles_by_network(engine, data_center_id: str | None = None) -> dict[str, str]:
    """Network name → the vNIC profile to plug a NIC into (the profile named as its network first).

    With ``data_center_id`` (the cluster's), only that data center's networks count.
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
    that exists in two data centers picks the cluster's.
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
    raise PlacementError(f"there is no vNIC profile or network {value!r} in {where} (profiles: {names})")
