"""Snapshots, backups and checkpoints of a VM, and the tag that marks what we created."""

from __future__ import annotations

import ovirtsdk4 as sdk
from ovirtsdk4 import types

from plugin.engine import convert
from plugin.engine.connection import Engine
from plugin.engine.records import (
    BackupDiskInfo,
    BackupInfo,
    CheckpointInfo,
    SnapshotDiskInfo,
    SnapshotInfo,
)
from plugin.engine.waiting import ShouldStop, wait_for
from plugin.errors import NotFound, OperationFailed, is_not_found, translated

# Every snapshot, backup, transfer, disk and VM the project creates carries this
# prefix in its description, so a reconcile can find what a crashed session left.
DESCRIPTION_PREFIX = "vbr:"

BACKUP_TERMINAL_PHASES = frozenset({"succeeded", "failed"})


def description_tag(session_id: object, note: str = "") -> str:
    """The description to put on what a session creates: "vbr:<session id>[ <note>]"."""
    tag = f"{DESCRIPTION_PREFIX}{session_id}"
    return f"{tag} {note}" if note else tag


def session_of(description: str | None) -> str | None:
    """The session id in a description made by description_tag, or None if it isn't ours."""
    if not description or not description.startswith(DESCRIPTION_PREFIX):
        return None
    return description[len(DESCRIPTION_PREFIX):].split(" ", 1)[0] or None


def _vm_service(engine: Engine, vm_id: str):
    return engine.sdk.system_service().vms_service().vm_service(vm_id)


# Snapshots


@translated("creating a snapshot")
def create_snapshot(engine: Engine, vm_id: str, description: str,
                    disk_ids: list[str] | None = None) -> SnapshotInfo:
    """Start a snapshot of the VM (of only ``disk_ids`` if given), without memory.

    Returns at once with status "locked"; use wait_snapshot_ready.
    """
    attachments = None
    if disk_ids is not None:
        attachments = [types.DiskAttachment(disk=types.Disk(id=d)) for d in disk_ids]
    snapshot = types.Snapshot(description=description, persist_memorystate=False,
                              disk_attachments=attachments)
    return convert.snapshot(_vm_service(engine, vm_id).snapshots_service().add(snapshot))


@translated("reading a snapshot")
def get_snapshot(engine: Engine, vm_id: str, snapshot_id: str) -> SnapshotInfo:
    """One snapshot; NotFound once it is deleted."""
    service = _vm_service(engine, vm_id).snapshots_service().snapshot_service(snapshot_id)
    return convert.snapshot(service.get())


@translated("listing snapshots")
def list_snapshots(engine: Engine, vm_id: str) -> list[SnapshotInfo]:
    """The VM's snapshots (including the "Active VM" one)."""
    return [convert.snapshot(s) for s in _vm_service(engine, vm_id).snapshots_service().list()]


def wait_snapshot_ready(engine: Engine, vm_id: str, snapshot_id: str, *, timeout: float = 600,
                        should_stop: ShouldStop = None) -> SnapshotInfo:
    """Wait until the snapshot's status is "ok"; EngineTimeout after ``timeout`` s.

    OperationFailed if the snapshot disappears (the engine failed to create it).
    """
    def fetch() -> SnapshotInfo | None:
        try:
            return get_snapshot(engine, vm_id, snapshot_id)
        except NotFound:
            return None

    snapshot = wait_for(fetch, lambda s: s is None or s.status == "ok", timeout=timeout,
                        what=f"snapshot {snapshot_id} to be ready", should_stop=should_stop)
    if snapshot is None:
        raise OperationFailed(f"The engine failed to create snapshot {snapshot_id} (it is gone).")
    return snapshot


@translated("listing a snapshot's disks")
def list_snapshot_disks(engine: Engine, vm_id: str, snapshot_id: str) -> list[SnapshotDiskInfo]:
    """The disks in a snapshot, each with the disk snapshot (image) id to transfer."""
    service = _vm_service(engine, vm_id).snapshots_service().snapshot_service(snapshot_id)
    return [convert.snapshot_disk(d) for d in service.disks_service().list()]


@translated("deleting a snapshot")
def delete_snapshot(engine: Engine, vm_id: str, snapshot_id: str) -> None:
    """Start deleting (merging) a snapshot; use wait_snapshot_gone. Gone already is fine."""
    service = _vm_service(engine, vm_id).snapshots_service().snapshot_service(snapshot_id)
    try:
        service.remove()
    except sdk.Error as exc:
        if not is_not_found(exc):
            raise


def wait_snapshot_gone(engine: Engine, vm_id: str, snapshot_id: str, *, timeout: float = 600,
                       should_stop: ShouldStop = None) -> None:
    """Wait until the snapshot no longer exists; EngineTimeout after ``timeout`` s."""
    def fetch() -> bool:
        try:
            get_snapshot(engine, vm_id, snapshot_id)
            return False
        except NotFound:
            return True

    wait_for(fetch, bool, timeout=timeout, what=f"snapshot {snapshot_id} to be deleted",
             describe=lambda _: "still there", should_stop=should_stop)


# Backups


@translated("starting a backup")
def start_backup(engine: Engine, vm_id: str, disk_ids: list[str], *, description: str,
                 from_checkpoint_id: str | None = None) -> BackupInfo:
    """Start a backup of the VM's disks, incremental since ``from_checkpoint_id`` if given.

    Conflict if the VM is already in a backup. Use wait_backup_phase(..., {"ready"}).
    """
    backup = types.Backup(description=description, from_checkpoint_id=from_checkpoint_id,
                          disks=[types.Disk(id=d) for d in disk_ids])
    return convert.backup(_vm_service(engine, vm_id).backups_service().add(backup), vm_id)


@translated("reading a backup")
def get_backup(engine: Engine, vm_id: str, backup_id: str) -> BackupInfo:
    """One backup of the VM."""
    service = _vm_service(engine, vm_id).backups_service().backup_service(backup_id)
    return convert.backup(service.get(), vm_id)


@translated("listing backups")
def list_backups(engine: Engine, vm_id: str) -> list[BackupInfo]:
    """The VM's backups the engine still knows."""
    return [convert.backup(b, vm_id) for b in _vm_service(engine, vm_id).backups_service().list()]


def wait_backup_phase(engine: Engine, vm_id: str, backup_id: str, phases: set[str] | frozenset[str],
                      *, timeout: float = 600, should_stop: ShouldStop = None) -> BackupInfo:
    """Wait until the backup reaches one of ``phases``; EngineTimeout after ``timeout`` s.

    OperationFailed when it fails instead (unless "failed" is one of ``phases``).
    """
    backup = wait_for(lambda: get_backup(engine, vm_id, backup_id),
                      lambda b: b.phase in phases or b.phase == "failed", timeout=timeout,
                      what=f"backup {backup_id} to reach {'/'.join(sorted(phases))}",
                      describe=lambda b: f"phase {b.phase or 'unknown'}", should_stop=should_stop)
    if backup.phase == "failed" and "failed" not in phases:
        raise OperationFailed(f"The engine failed backup {backup_id} of VM {vm_id}.")
    return backup


@translated("listing a backup's disks")
def list_backup_disks(engine: Engine, vm_id: str, backup_id: str) -> list[BackupDiskInfo]:
    """The disks of a ready backup, each with its backup_mode (full or incremental)."""
    service = _vm_service(engine, vm_id).backups_service().backup_service(backup_id)
    return [convert.backup_disk(d) for d in service.disks_service().list()]


@translated("finalizing a backup")
def finalize_backup(engine: Engine, vm_id: str, backup_id: str) -> None:
    """End the backup (release the VM); use wait_backup_done to learn the outcome."""
    _vm_service(engine, vm_id).backups_service().backup_service(backup_id).finalize()


def wait_backup_done(engine: Engine, vm_id: str, backup_id: str, *, timeout: float = 600,
                     should_stop: ShouldStop = None) -> BackupInfo:
    """Wait for "succeeded" or "failed" after finalize; the backup (check its phase)."""
    return wait_backup_phase(engine, vm_id, backup_id, BACKUP_TERMINAL_PHASES, timeout=timeout,
                             should_stop=should_stop)


# Checkpoints


@translated("listing checkpoints")
def list_checkpoints(engine: Engine, vm_id: str) -> list[CheckpointInfo]:
    """The VM's checkpoints, oldest (root) first."""
    checkpoints = [convert.checkpoint(c) for c in _vm_service(engine, vm_id).checkpoints_service().list()]
    return _chain_order(checkpoints)


@translated("deleting a checkpoint")
def delete_checkpoint(engine: Engine, vm_id: str, checkpoint_id: str) -> None:
    """Delete one checkpoint (the engine only allows the root, the oldest)."""
    _vm_service(engine, vm_id).checkpoints_service().checkpoint_service(checkpoint_id).remove()


def delete_root_checkpoint(engine: Engine, vm_id: str) -> CheckpointInfo | None:
    """Delete the VM's oldest checkpoint; the one deleted, or None if there was none."""
    checkpoints = list_checkpoints(engine, vm_id)
    if not checkpoints:
        return None
    delete_checkpoint(engine, vm_id, checkpoints[0].id)
    return checkpoints[0]


def _chain_order(checkpoints: list[CheckpointInfo]) -> list[CheckpointInfo]:
    ids = {c.id for c in checkpoints}
    children = {c.parent_id: c for c in checkpoints if c.parent_id in ids}
    roots = [c for c in checkpoints if c.parent_id not in ids]
    ordered: list[CheckpointInfo] = []
    for root in sorted(roots, key=lambda c: (c.creation_date is None, c.creation_date or 0)):
        node: CheckpointInfo | None = root
        while node is not None and node not in ordered:
            ordered.append(node)
            node = children.get(node.id)
    ordered += [c for c in checkpoints if c not in ordered]
    return ordered
