"""Where restored disks may go, and whether a VM can take them: checked before anything is created.

The engine creates a disk on any data storage domain, but attaches it only to a
VM in a cluster of that domain's data center. It attaches nothing to a VM that
is neither up, paused nor down, and into a running VM a disk goes by hot plug,
which it refuses for IDE and sPAPR VSCSI disks whatever the guest. Each refusal
would come only after the disks were created and uploaded; these checks make
the restore fail first, with nothing created and a message saying what to
choose instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from jobs.restore import targets
from jobs.restore.points import RestoreError
from plugin import engine as ovirt

ATTACHABLE_STATES = ("up", "paused", "down")
NOT_HOT_PLUGGABLE = ("ide", "spapr_vscsi")


@dataclass
class Placement:
    """The engine's data storage domains, and the data center restored disks must be usable in.

    ``data_center`` None: floating disks, any data domain will do. ``target`` says what
    is in that data center ("cluster 'Production'"), for the messages.
    """

    domains: list = field(default_factory=list)  # plugin.engine.StorageDomainInfo
    data_center: object = None  # plugin.engine.DataCenterInfo
    target: str = ""

    @classmethod
    def floating(cls, engine) -> Placement:
        """Any data domain: the disks stay floating."""
        return cls(targets.data_domains(engine))

    @classmethod
    def for_cluster(cls, engine, cluster) -> Placement:
        """The data domains a VM of this cluster can use: those of the cluster's data center."""
        return cls(targets.data_domains(engine), _data_center(engine, cluster.data_center_id),
                   f"cluster {cluster.name!r}")

    @classmethod
    def for_vm(cls, engine, vm) -> Placement:
        """The data domains whose disks this VM can take: those of its cluster's data center."""
        if not vm.cluster_id:
            return cls.floating(engine)
        cluster = targets.cluster(engine, vm.cluster_id)
        return cls(targets.data_domains(engine), _data_center(engine, cluster.data_center_id),
                   f"VM {vm.name!r} (cluster {cluster.name!r})")

    @property
    def usable(self) -> list:
        """The data domains attached to the data center (all of them when there is none to match)."""
        if self.data_center is None:
            return list(self.domains)
        return [sd for sd in self.domains if self.data_center.id in sd.data_center_ids]

    def chosen(self, value: str) -> str:
        """The id of the storage domain given (id or name); RestoreError when it can't be used."""
        domain = targets.pick(self.domains, value, "storage domain")
        self._check(domain, f"storage domain {domain.name!r} is")
        return domain.id

    def source(self, domain_id: str, disk: str) -> str:
        """``domain_id``, where source disk ``disk`` was; RestoreError when it can't be used."""
        domain = next((sd for sd in self.domains if sd.id == domain_id), None)
        if domain is None:
            raise RestoreError(f"disk {disk} was on a storage domain the engine no longer has: choose a "
                               f"storage domain for it ({self._usable_names()})")
        self._check(domain, f"disk {disk} was on storage domain {domain.name!r}, which is")
        return domain.id

    def _check(self, domain, subject: str) -> None:
        if domain in self.usable:
            return
        raise RestoreError(f"{subject} not attached to data center {self.data_center.name!r}, where "
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
