"""SDK objects to plain records (plugin.engine.records). Internal to plugin.engine."""

from __future__ import annotations

from datetime import UTC, datetime

from ovirtsdk4 import types

from plugin.engine import records


def value(enum_or_none) -> str:
    """An SDK enum's API value, or "" when the engine sent none (or one the SDK doesn't know)."""
    if enum_or_none is None:
        return ""
    return getattr(enum_or_none, "value", str(enum_or_none))


def ref_id(obj) -> str | None:
    """The id of a linked object, or None."""
    return getattr(obj, "id", None) if obj is not None else None


def aware(moment: datetime | None) -> datetime | None:
    """A datetime with a time zone (the SDK returns naive ones when the engine omits it)."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


def _list(items) -> list:
    # A collection the engine didn't inline comes back as a link: an SDK List
    # with an href and no items. Either way iterating it is safe.
    return list(items or [])


def data_center(dc: types.DataCenter) -> records.DataCenterInfo:
    """A DataCenterInfo from an SDK data center."""
    return records.DataCenterInfo(id=dc.id, name=dc.name or "", status=value(dc.status),
                                  description=dc.description or "")


def cluster(c: types.Cluster) -> records.ClusterInfo:
    """A ClusterInfo from an SDK cluster."""
    arch = value(c.cpu.architecture) if c.cpu is not None else ""
    return records.ClusterInfo(id=c.id, name=c.name or "", data_center_id=ref_id(c.data_center),
                               cpu_architecture=arch, description=c.description or "")


def host(h: types.Host) -> records.HostInfo:
    """A HostInfo from an SDK host."""
    return records.HostInfo(id=h.id, name=h.name or "", address=h.address or "",
                            status=value(h.status), cluster_id=ref_id(h.cluster))


def storage_domain(sd: types.StorageDomain) -> records.StorageDomainInfo:
    """A StorageDomainInfo from an SDK storage domain."""
    storage_type = value(sd.storage.type) if sd.storage is not None else ""
    return records.StorageDomainInfo(
        id=sd.id, name=sd.name or "", type=value(sd.type), storage_type=storage_type,
        status=value(sd.status) or value(sd.external_status), available=sd.available or 0,
        used=sd.used or 0, committed=sd.committed or 0,
        data_center_ids=tuple(dc.id for dc in _list(sd.data_centers) if dc.id),
    )


def network(n: types.Network) -> records.NetworkInfo:
    """A NetworkInfo from an SDK network."""
    vlan = n.vlan.id if n.vlan is not None else None
    return records.NetworkInfo(id=n.id, name=n.name or "", data_center_id=ref_id(n.data_center),
                               vlan_id=vlan, description=n.description or "")


def vnic_profile(p: types.VnicProfile) -> records.VnicProfileInfo:
    """A VnicProfileInfo from an SDK vNIC profile."""
    return records.VnicProfileInfo(id=p.id, name=p.name or "", network_id=ref_id(p.network))


def template(t: types.Template) -> records.TemplateInfo:
    """A TemplateInfo from an SDK template."""
    return records.TemplateInfo(id=t.id, name=t.name or "", cluster_id=ref_id(t.cluster))


def cpu_count(cpu: types.Cpu | None) -> int:
    """Sockets × cores × threads (0 when the engine gave no topology)."""
    if cpu is None or cpu.topology is None:
        return 0
    topology = cpu.topology
    return (topology.sockets or 1) * (topology.cores or 1) * (topology.threads or 1)


def disk_attachment(a: types.DiskAttachment) -> records.DiskAttachmentInfo:
    """A DiskAttachmentInfo from an SDK disk attachment."""
    return records.DiskAttachmentInfo(
        disk_id=ref_id(a.disk) or a.id, interface=value(a.interface), bootable=bool(a.bootable),
        active=a.active is not False, id=a.id or "",
    )


def nic(n: types.Nic) -> records.NicInfo:
    """A NicInfo from an SDK NIC."""
    mac = n.mac.address if n.mac is not None else ""
    return records.NicInfo(id=n.id, name=n.name or "", mac=mac or "", interface=value(n.interface),
                           vnic_profile_id=ref_id(n.vnic_profile), plugged=n.plugged is not False,
                           linked=n.linked is not False)


def vm(v: types.Vm) -> records.VmInfo:
    """A VmInfo from an SDK VM (tags, attachments and NICs when they were followed)."""
    return records.VmInfo(
        id=v.id, name=v.name or "", status=value(v.status), description=v.description or "",
        os_type=(v.os.type or "") if v.os is not None else "", memory=v.memory or 0,
        cpus=cpu_count(v.cpu), cluster_id=ref_id(v.cluster), host_id=ref_id(v.host),
        template_id=ref_id(v.template),
        tags=tuple(sorted(t.name for t in _list(v.tags) if t.name)),
        disk_attachments=tuple(disk_attachment(a) for a in _list(v.disk_attachments)),
        nics=tuple(nic(n) for n in _list(v.nics)),
        creation_time=aware(v.creation_time), boot_devices=boot_devices(v.os),
    )


def boot_devices(os: types.OperatingSystem | None) -> tuple[str, ...]:
    """The VM's boot order ("hd", "network", "cdrom")."""
    if os is None or os.boot is None:
        return ()
    return tuple(value(device) for device in _list(os.boot.devices))


def disk(d: types.Disk) -> records.DiskInfo:
    """A DiskInfo from an SDK disk (its first storage domain)."""
    domains = _list(d.storage_domains)
    return records.DiskInfo(
        id=d.id, name=d.alias or d.name or "", format=value(d.format),
        provisioned_size=d.provisioned_size or 0, actual_size=d.actual_size or 0,
        total_size=d.total_size or 0, storage_domain_id=domains[0].id if domains else None,
        backup_incremental=value(d.backup) == "incremental", sparse=bool(d.sparse),
        status=value(d.status), content_type=value(d.content_type), shareable=bool(d.shareable),
        storage_type=value(d.storage_type), description=d.description or "",
        image_id=d.image_id or "",
    )


def snapshot(s: types.Snapshot) -> records.SnapshotInfo:
    """A SnapshotInfo from an SDK snapshot."""
    return records.SnapshotInfo(id=s.id, description=s.description or "",
                                status=value(s.snapshot_status),
                                snapshot_type=value(s.snapshot_type), date=aware(s.date))


def snapshot_disk(d: types.Disk) -> records.SnapshotDiskInfo:
    """A SnapshotDiskInfo from a disk of a snapshot."""
    return records.SnapshotDiskInfo(disk_id=d.id, image_id=d.image_id or "",
                                    name=d.alias or d.name or "", format=value(d.format),
                                    provisioned_size=d.provisioned_size or 0,
                                    actual_size=d.actual_size or 0)


def backup(b: types.Backup, vm_id: str) -> records.BackupInfo:
    """A BackupInfo from an SDK backup of the VM ``vm_id``."""
    return records.BackupInfo(
        id=b.id, vm_id=ref_id(b.vm) or vm_id, phase=value(b.phase),
        from_checkpoint_id=b.from_checkpoint_id or None, to_checkpoint_id=b.to_checkpoint_id or None,
        description=b.description or "", disk_ids=tuple(d.id for d in _list(b.disks) if d.id),
        host_id=ref_id(b.host), creation_date=aware(b.creation_date),
    )


def backup_disk(d: types.Disk) -> records.BackupDiskInfo:
    """A BackupDiskInfo from a disk of a backup."""
    return records.BackupDiskInfo(disk_id=d.id, name=d.alias or d.name or "",
                                  backup_mode=value(d.backup_mode), format=value(d.format),
                                  provisioned_size=d.provisioned_size or 0)


def checkpoint(c: types.Checkpoint) -> records.CheckpointInfo:
    """A CheckpointInfo from an SDK checkpoint."""
    return records.CheckpointInfo(
        id=c.id, parent_id=c.parent_id or None, state=value(c.state),
        description=c.description or "", creation_date=aware(c.creation_date),
        disk_ids=tuple(d.id for d in _list(c.disks) if d.id),
    )


def transfer(t: types.ImageTransfer) -> records.TransferInfo:
    """A TransferInfo from an SDK image transfer."""
    return records.TransferInfo(
        id=t.id, phase=value(t.phase), direction=value(t.direction), format=value(t.format),
        disk_id=ref_id(t.disk), backup_id=ref_id(t.backup), snapshot_id=ref_id(t.snapshot),
        host_id=ref_id(t.host), transfer_url=t.transfer_url or "", proxy_url=t.proxy_url or "",
        transferred=t.transferred or 0, description=t.description or "",
        inactivity_timeout=t.inactivity_timeout,
    )
