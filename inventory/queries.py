"""Read-side views of the inventory shared by pages and commands."""

from __future__ import annotations

from django.db.models import Prefetch

from inventory.models import VM, Disk, Manager


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
