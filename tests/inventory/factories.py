"""Inventories as an engine would return them, for tests that need no engine."""

from plugin import engine as ovirt
from plugin.engine.records import DiskAttachmentInfo


def inventory(vm_count: int = 3, *, prefix: str = "vm") -> ovirt.Inventory:
    """One data center, one cluster, one host, one storage domain and ``vm_count`` VMs with a disk each."""
    vms, disks = [], []
    for i in range(vm_count):
        disk_id = f"disk-{prefix}-{i}"
        vms.append(ovirt.VmInfo(
            id=f"id-{prefix}-{i}", name=f"{prefix}-{i:04d}", status="up" if i % 2 else "down",
            memory=(i + 1) * 2**30, cpus=2, cluster_id="cl-1", host_id="h-1", os_type="rhel_9x64",
            tags=("gold",) if i % 2 else (),
            disk_attachments=(DiskAttachmentInfo(disk_id=disk_id, interface="virtio_scsi", bootable=True),),
        ))
        disks.append(ovirt.DiskInfo(id=disk_id, name=f"{prefix}-{i:04d}_disk0", format="cow",
                                    provisioned_size=10 * 2**30, actual_size=2**30,
                                    storage_domain_id="sd-1", backup_incremental=True, status="ok"))
    return ovirt.Inventory(
        data_centers=[ovirt.DataCenterInfo(id="dc-1", name="Default", status="up")],
        clusters=[ovirt.ClusterInfo(id="cl-1", name="Cluster1", data_center_id="dc-1")],
        hosts=[ovirt.HostInfo(id="h-1", name="host1", address="10.0.0.1", status="up", cluster_id="cl-1")],
        storage_domains=[ovirt.StorageDomainInfo(id="sd-1", name="data1", type="data", storage_type="nfs",
                                                 available=500 * 2**30, used=100 * 2**30,
                                                 data_center_ids=("dc-1",))],
        networks=[ovirt.NetworkInfo(id="n-1", name="ovirtmgmt", data_center_id="dc-1")],
        vms=vms, disks=disks,
    )
