"""Backups through ovirtsdk4 and ovirt_imageio.client, as a backup application runs them."""

from pathlib import Path

import ovirtsdk4.types as types
from ovirt_imageio import client

from tests.simulator.support import finalize, start_transfer, wait_for

TERMINAL = (types.BackupPhase.SUCCEEDED, types.BackupPhase.FAILED)


def start_backup(connection, vm, disks, from_checkpoint: str | None = None):
    """Add a backup and wait until it is ready or failed; (backup, its service)."""
    backups = connection.system_service().vms_service().vm_service(vm.id).backups_service()
    backup = backups.add(types.Backup(disks=[types.Disk(id=d.id) for d in disks],
                                      from_checkpoint_id=from_checkpoint))
    assert backup.phase == types.BackupPhase.INITIALIZING
    service = backups.backup_service(backup.id)
    backup = wait_for(service.get, lambda b: b.phase in (types.BackupPhase.READY,
                                                         types.BackupPhase.FAILED))
    return backup, service


def end_backup(service) -> types.Backup:
    """Finalize a backup and wait for its end."""
    service.finalize()
    return wait_for(service.get, lambda b: b.phase in TERMINAL)


def download_backup_disk(sim, connection, backup, disk, target: Path,
                         backing: Path | None = None) -> None:
    """Download one disk of a ready backup: full as qcow2, or incremental on a backing file."""
    transfer, service = start_transfer(
        connection, disk=types.Disk(id=disk.id), backup=types.Backup(id=backup.id),
        direction=types.ImageTransferDirection.DOWNLOAD, format=types.DiskFormat.RAW)
    if backing is None:
        client.download(transfer.transfer_url, str(target), str(sim.ca_file), fmt="qcow2")
    else:
        client.download(transfer.transfer_url, str(target), str(sim.ca_file), fmt="qcow2",
                        incremental=True, backing_file=str(backing), backing_format="qcow2")
    assert finalize(service).phase == types.ImageTransferPhase.FINISHED_SUCCESS


def dirty_ranges(sim, connection, backup, disk) -> list[tuple[int, int]]:
    """(start, length) of the dirty extents imageio reports for a disk of a backup."""
    transfer, service = start_transfer(
        connection, disk=types.Disk(id=disk.id), backup=types.Backup(id=backup.id),
        direction=types.ImageTransferDirection.DOWNLOAD, format=types.DiskFormat.RAW)
    imageio = client.ImageioClient(transfer.transfer_url, cafile=str(sim.ca_file))
    try:
        ranges = [(e.start, e.length) for e in imageio.extents("dirty") if e.dirty]
    finally:
        imageio.close()
    finalize(service)
    return ranges


def backup_modes(connection, vm, backup) -> dict[str, types.DiskBackupMode]:
    """disk id -> backup_mode of a backup's disks."""
    service = (connection.system_service().vms_service().vm_service(vm.id).backups_service()
               .backup_service(backup.id))
    return {d.id: d.backup_mode for d in service.disks_service().list()}
