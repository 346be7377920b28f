"""Plain records the facade returns: no SDK object ever leaves plugin.engine.

Enumerations are their oVirt API values as strings ("up", "cow", "ready",
"transferring", ...); sizes are bytes; ids are the engine's UUID strings;
times are timezone-aware datetimes or None.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class ApiInfo:
    """What the engine says about itself (for "Test connection")."""

    product_name: str
    version: str
    vendor: str = ""
    instance_id: str = ""


@dataclass(frozen=True)
class DataCenterInfo:
    """A data center."""

    id: str
    name: str
    status: str = ""
    description: str = ""


@dataclass(frozen=True)
class ClusterInfo:
    """A cluster of hosts in a data center."""

    id: str
    name: str
    data_center_id: str | None = None
    cpu_architecture: str = ""
    description: str = ""


@dataclass(frozen=True)
class HostInfo:
    """A hypervisor host."""

    id: str
    name: str
    address: str = ""
    status: str = ""
    cluster_id: str | None = None


@dataclass(frozen=True)
class StorageDomainInfo:
    """A storage domain; ``available`` and ``used`` are bytes (0 when the engine doesn't say)."""

    id: str
    name: str
    type: str = ""
    storage_type: str = ""
    status: str = ""
    available: int = 0
    used: int = 0
    committed: int = 0
    data_center_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class NetworkInfo:
    """A logical network of a data center."""

    id: str
    name: str
    data_center_id: str | None = None
    vlan_id: int | None = None
    description: str = ""


@dataclass(frozen=True)
class VnicProfileInfo:
    """A vNIC profile (what a VM's NIC is plugged into)."""

    id: str
    name: str
    network_id: str | None = None


@dataclass(frozen=True)
class TemplateInfo:
    """A VM template ("Blank" is always there)."""

    id: str
    name: str
    cluster_id: str | None = None


@dataclass(frozen=True)
class DiskAttachmentInfo:
    """How a disk is attached to a VM."""

    disk_id: str
    interface: str = ""
    bootable: bool = False
    active: bool = True
    id: str = ""


@dataclass(frozen=True)
class NicInfo:
    """A VM's network interface."""

    id: str
    name: str
    mac: str = ""
    interface: str = ""
    vnic_profile_id: str | None = None
    plugged: bool = True
    linked: bool = True


@dataclass(frozen=True)
class VmInfo:
    """A virtual machine; ``memory`` is bytes, ``cpus`` sockets × cores × threads."""

    id: str
    name: str
    status: str = ""
    description: str = ""
    os_type: str = ""
    memory: int = 0
    cpus: int = 0
    cluster_id: str | None = None
    host_id: str | None = None
    template_id: str | None = None
    tags: tuple[str, ...] = ()
    disk_attachments: tuple[DiskAttachmentInfo, ...] = ()
    nics: tuple[NicInfo, ...] = ()
    creation_time: datetime | None = None
    boot_devices: tuple[str, ...] = ()


@dataclass(frozen=True)
class DiskInfo:
    """A disk image; ``format`` is "raw" or "cow", sizes in bytes.

    ``backup_incremental`` is the disk's "enable incremental backup" flag
    (``<backup>incremental</backup>``); ``image_id`` is the current volume.
    """

    id: str
    name: str
    format: str = ""
    provisioned_size: int = 0
    actual_size: int = 0
    total_size: int = 0
    storage_domain_id: str | None = None
    backup_incremental: bool = False
    sparse: bool = False
    status: str = ""
    content_type: str = ""
    shareable: bool = False
    storage_type: str = ""
    description: str = ""
    image_id: str = ""


@dataclass(frozen=True)
class Inventory:
    """Everything an engine manages, read with one list call per collection."""

    data_centers: list[DataCenterInfo] = field(default_factory=list)
    clusters: list[ClusterInfo] = field(default_factory=list)
    hosts: list[HostInfo] = field(default_factory=list)
    storage_domains: list[StorageDomainInfo] = field(default_factory=list)
    networks: list[NetworkInfo] = field(default_factory=list)
    vms: list[VmInfo] = field(default_factory=list)
    disks: list[DiskInfo] = field(default_factory=list)


@dataclass(frozen=True)
class SnapshotInfo:
    """A VM snapshot; ``status`` is "locked", "ok" or "in_preview"."""

    id: str
    description: str = ""
    status: str = ""
    snapshot_type: str = ""
    date: datetime | None = None


@dataclass(frozen=True)
class SnapshotDiskInfo:
    """A disk as captured in a snapshot: ``image_id`` is the disk snapshot to transfer."""

    disk_id: str
    image_id: str
    name: str = ""
    format: str = ""
    provisioned_size: int = 0
    actual_size: int = 0


@dataclass(frozen=True)
class BackupInfo:
    """A VM backup; ``phase`` is initializing/starting/ready/finalizing/succeeded/failed."""

    id: str
    vm_id: str
    phase: str = ""
    from_checkpoint_id: str | None = None
    to_checkpoint_id: str | None = None
    description: str = ""
    disk_ids: tuple[str, ...] = ()
    host_id: str | None = None
    creation_date: datetime | None = None


@dataclass(frozen=True)
class BackupDiskInfo:
    """A disk in a backup; ``backup_mode`` is "full" or "incremental"."""

    disk_id: str
    name: str = ""
    backup_mode: str = ""
    format: str = ""
    provisioned_size: int = 0


@dataclass(frozen=True)
class CheckpointInfo:
    """A VM checkpoint; the root one has no parent in the VM's list."""

    id: str
    parent_id: str | None = None
    state: str = ""
    description: str = ""
    creation_date: datetime | None = None
    disk_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class TransferInfo:
    """An image transfer; ``transfer_url`` (imageio on the host) and ``proxy_url``
    (imageio on the engine) are set once ``phase`` is "transferring"."""

    id: str
    phase: str = ""
    direction: str = ""
    format: str = ""
    disk_id: str | None = None
    backup_id: str | None = None
    snapshot_id: str | None = None
    host_id: str | None = None
    transfer_url: str = ""
    proxy_url: str = ""
    transferred: int = 0
    description: str = ""
    inactivity_timeout: int | None = None
