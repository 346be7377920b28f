"""Read-side views of the inventory shared by pages and commands."""

from __future__ import annotations

from django.db.models import Prefetch

from inventory.models import VM, DataCenter, Disk, Manager, StorageDomain
from plugin.placement import DATA_DOMAIN_TYPES


def vm_records(manager: Manager | None = None, *, include_removed: bool = False) -> list[dict]:
    """VMs as plain dicts with the keys `list_vms --json` promises.

    Keys: ``id`` (the engine's), ``name``, ``status``, ``cluster``, ``memory``
    (bytes), ``cpus``, ``tags``, ``disks`` (each ``id``, ``name``, ``format``,
    ``provisioned_size``, ``storage_domain``). Three queries whatever the count.
    """
    vms = VM.objects.select_related("cluster").order_by("name", "pk")
    disks = Disk.objects.select_related("storage_domain").order_by("name", "pk")
    if manager is not None:
        vms = vms.filter(manager=manager)
    if not include_removed:
        vms = vms.filter(removed=False)
        disks = disks.filter(removed=False)
    vms = vms.prefetch_related(Prefetch("disks", queryset=disks))
    return [_vm_record(vm) for vm in vms]


def _vm_record(vm: VM) -> dict:
    return {
        "id": vm.engine_id,
        "name": vm.name,
        "status": vm.status,
        "cluster": vm.cluster.name if vm.cluster else None,
        "memory": vm.memory,
        "cpus": vm.cpus,
        "tags": list(vm.tags),
        "disks": [
            {
                "id": disk.engine_id,
                "name": disk.name,
                "format": disk.format,
                "provisioned_size": disk.provisioned_size,
                "storage_domain": disk.storage_domain.name if disk.storage_domain else None,
            }
            for disk in vm.disks.all()
        ],
    }


def data_domains(**filters):
    """The storage domains disks can be created on (not removed, of a type plugin.placement
    creates disks on: the same the restore and worker deployments accept)."""
    return StorageDomain.objects.filter(removed=False, type__in=DATA_DOMAIN_TYPES, **filters)


def placement_problem(subject: str, domain: StorageDomain | None, data_center: DataCenter,
                      target: str) -> str | None:
    """Why a disk on ``domain`` can't serve a VM in ``data_center``, as the inventory knows them.

    The engine attaches a disk only to a VM of its storage domain's data center. A domain
    the inventory knows no data center of is left to the engine-side check
    (plugin.placement), which restores and worker deployments make before creating anything.
    """
    if domain is None or domain.data_center_id in (None, data_center.pk):
        return None
    usable = sorted(data_domains(data_center=data_center).values_list("name", flat=True))
    choices = f"usable there: {', '.join(usable)}" if usable else "it has no data storage domain"
    return (f"{subject} not attached to data center {data_center.name}, where {target} is: choose a "
            f"storage domain of that data center ({choices}).")
