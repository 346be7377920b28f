"""oVirt's incremental backup API with checkpoints as real qemu dirty bitmaps."""

import ovirtsdk4 as sdk
import ovirtsdk4.types as types
import pytest

from tests.simulator.backup_support import (
    backup_modes,
    dirty_ranges,
    download_backup_disk,
    end_backup,
    start_backup,
)
from tests.simulator.support import (
    qemu_compare,
    snapshot_copy,
    vm_disks,
    vm_named,
    wait_for,
    wait_gone,
)

KiB, MiB = 2**10, 2**20
CLUSTER = 64 * KiB
WRITES = [(1 * MiB, 256 * KiB), (10 * MiB, 64 * KiB), (40 * MiB + 4 * KiB, 100 * KiB)]


def _write(sim, vm: str, disk: str, writes, seed: int) -> int:
    for offset, length in writes:
        sim.cli("guest-write", "--vm", vm, "--disk", disk, "--offset", str(offset),
                "--length", str(length), "--seed", str(seed))
    return sum(length for _, length in writes)


def _checkpoints(connection, vm):
    return connection.system_service().vms_service().vm_service(vm.id).checkpoints_service()


def test_a_full_backup_of_a_raw_and_a_qcow2_disk(sim, connection, tmp_path):
    vm = vm_named(connection, "small-vm1")
    cow_disk, raw_disk = vm_disks(connection, vm)
    assert _checkpoints(connection, vm).list() == []
    backup, service = start_backup(connection, vm, [cow_disk, raw_disk])
    assert backup.phase == types.BackupPhase.READY and backup.to_checkpoint_id
    assert backup_modes(connection, vm, backup) == {
        cow_disk.id: types.DiskBackupMode.FULL, raw_disk.id: types.DiskBackupMode.FULL}
    for disk in (cow_disk, raw_disk):
        target = tmp_path / f"{disk.id}.qcow2"
        download_backup_disk(sim, connection, backup, disk, target)
        path, fmt = sim.disk_image(disk.id)
        assert qemu_compare(target, "qcow2", path, fmt) == ""
    assert end_backup(service).phase == types.BackupPhase.SUCCEEDED
    [checkpoint] = _checkpoints(connection, vm).list()
    assert checkpoint.id == backup.to_checkpoint_id and checkpoint.parent_id is None
    assert checkpoint.state == types.CheckpointState.CREATED
    assert checkpoint.creation_date.tzinfo is not None
    assert [d.id for d in checkpoint.disks] == [cow_disk.id]
    checkpoint_disks = (_checkpoints(connection, vm).checkpoint_service(checkpoint.id)
                        .disks_service().list())
    assert [d.id for d in checkpoint_disks] == [cow_disk.id]


def test_an_incremental_backup_is_the_disk_as_it_was_when_it_started(sim, connection, tmp_path):
    vm = vm_named(connection, "small-vm2")
    disk = vm_disks(connection, vm)[0]
    backup, service = start_backup(connection, vm, [disk])
    full = tmp_path / "full.qcow2"
    download_backup_disk(sim, connection, backup, disk, full)
    end_backup(service)
    written = _write(sim, "small-vm2", disk.alias, WRITES, seed=11)
    path, fmt = sim.disk_image(disk.id)
    expected = snapshot_copy(path, fmt, tmp_path / "expected.qcow2")

    incremental, service = start_backup(connection, vm, [disk],
                                        from_checkpoint=backup.to_checkpoint_id)
    assert incremental.from_checkpoint_id == backup.to_checkpoint_id
    assert backup_modes(connection, vm, incremental) == {disk.id: types.DiskBackupMode.INCREMENTAL}
    later_write = [(2 * MiB, 512 * KiB), (100 * MiB, 1 * MiB)]
    _write(sim, "small-vm2", disk.alias, later_write, seed=12)

    ranges = dirty_ranges(sim, connection, incremental, disk)
    dirty = sum(length for _, length in ranges)
    for offset, length in WRITES:
        assert any(start <= offset and offset + length <= start + size
                   for start, size in ranges), (offset, length, ranges)
    assert written <= dirty <= written + 2 * CLUSTER * len(WRITES)
    print(f"written {written} bytes, dirty {dirty} bytes")

    chain_top = tmp_path / "incremental.qcow2"
    download_backup_disk(sim, connection, incremental, disk, chain_top, backing=full)
    assert end_backup(service).phase == types.BackupPhase.SUCCEEDED
    assert qemu_compare(chain_top, "qcow2", expected, "qcow2") == ""
    now_path, now_fmt = sim.disk_image(disk.id)
    assert qemu_compare(now_path, now_fmt, expected, "qcow2") != ""
    [first, second] = _checkpoints(connection, vm).list()
    assert second.parent_id == first.id == backup.to_checkpoint_id


def test_a_broken_checkpoint_fails_the_incremental_and_a_new_full_succeeds(sim, connection):
    vm = vm_named(connection, "small-vm2")
    disks = vm_disks(connection, vm)
    backup, service = start_backup(connection, vm, disks)
    end_backup(service)
    checkpoint = backup.to_checkpoint_id
    sim.cli("fault", "checkpoint", "--vm", "small-vm2", "--checkpoint", checkpoint,
            "--action", "remove-bitmap")
    failed, _ = start_backup(connection, vm, disks, from_checkpoint=checkpoint)
    assert failed.phase == types.BackupPhase.FAILED
    events = connection.system_service().events_service().list(search="severity=error")
    assert any("Bitmap does not exist" in e.description for e in events)
    assert _checkpoints(connection, vm).checkpoint_service(checkpoint).get().state == \
        types.CheckpointState.INVALID
    with pytest.raises(sdk.Error) as refused:
        start_backup(connection, vm, disks, from_checkpoint=checkpoint)
    assert refused.value.code == 409

    full, service = start_backup(connection, vm, disks)
    assert set(backup_modes(connection, vm, full).values()) == {types.DiskBackupMode.FULL}
    assert end_backup(service).phase == types.BackupPhase.SUCCEEDED


def test_an_invalidated_checkpoint_is_refused(sim, connection):
    vm = vm_named(connection, "small-vm2")
    disks = vm_disks(connection, vm)
    backup, service = start_backup(connection, vm, disks)
    end_backup(service)
    sim.cli("fault", "checkpoint", "--vm", "small-vm2", "--checkpoint", backup.to_checkpoint_id)
    with pytest.raises(sdk.Error) as refused:
        start_backup(connection, vm, disks, from_checkpoint=backup.to_checkpoint_id)
    assert refused.value.code == 409 and "invalid" in str(refused.value)


def test_only_the_root_checkpoint_can_be_deleted(connection):
    vm = vm_named(connection, "small-vm2")
    disks = vm_disks(connection, vm)
    ids = []
    for _ in range(2):
        backup, service = start_backup(connection, vm, disks, from_checkpoint=(ids or [None])[-1])
        end_backup(service)
        ids.append(backup.to_checkpoint_id)
    checkpoints = _checkpoints(connection, vm)
    with pytest.raises(sdk.Error) as refused:
        checkpoints.checkpoint_service(ids[1]).remove()
    assert refused.value.code == 409
    checkpoints.checkpoint_service(ids[0]).remove()
    wait_gone(checkpoints.checkpoint_service(ids[0]).get)
    [left] = checkpoints.list()
    assert left.id == ids[1] and left.parent_id is None
    backup, service = start_backup(connection, vm, disks, from_checkpoint=ids[1])
    assert backup.phase == types.BackupPhase.READY
    end_backup(service)


def test_one_backup_per_vm_and_the_snapshot_flow_beside_it(sim, connection, tmp_path):
    vm = vm_named(connection, "small-vm2")
    disk = vm_disks(connection, vm)[0]
    backup, service = start_backup(connection, vm, [disk])
    vms = connection.system_service().vms_service()
    with pytest.raises(sdk.Error) as second:
        vms.vm_service(vm.id).backups_service().add(types.Backup(disks=[types.Disk(id=disk.id)]))
    assert second.value.code == 409
    with pytest.raises(sdk.Error) as snapshot_during:
        vms.vm_service(vm.id).snapshots_service().add(types.Snapshot(description="during"))
    assert snapshot_during.value.code == 409
    end_backup(service)

    snapshots = vms.vm_service(vm.id).snapshots_service()
    snapshot = snapshots.add(types.Snapshot(description="snapshot flow"))
    wait_for(snapshots.snapshot_service(snapshot.id).get,
             lambda s: s.snapshot_status == types.SnapshotStatus.OK)
    written = _write(sim, "small-vm2", disk.alias, [(3 * MiB, 128 * KiB)], seed=5)
    snapshots.snapshot_service(snapshot.id).remove()
    wait_gone(snapshots.snapshot_service(snapshot.id).get)
    incremental, service = start_backup(connection, vm, [disk],
                                        from_checkpoint=backup.to_checkpoint_id)
    ranges = dirty_ranges(sim, connection, incremental, disk)
    assert any(start <= 3 * MiB and 3 * MiB + written <= start + size for start, size in ranges)
    end_backup(service)


def test_backup_faults_fail_initializing_and_stick_in_finalizing(sim, connection):
    vm = vm_named(connection, "small-vm1")
    disks = vm_disks(connection, vm)
    sim.cli("fault", "add", "backup-fail-initializing", "--count", "1")
    failed, _ = start_backup(connection, vm, disks)
    assert failed.phase == types.BackupPhase.FAILED
    sim.cli("fault", "add", "backup-stuck-finalizing", "--count", "1")
    backup, service = start_backup(connection, vm, disks)
    service.finalize()
    for _ in range(10):
        assert service.get().phase == types.BackupPhase.FINALIZING
    sim.cli("fault", "clear")
    done = wait_for(service.get, lambda b: b.phase == types.BackupPhase.SUCCEEDED)
    assert done.to_checkpoint_id == backup.to_checkpoint_id


def test_a_disk_not_in_the_previous_checkpoint_is_full_in_the_incremental(connection):
    vm = vm_named(connection, "small-vm2")
    first, second = vm_disks(connection, vm)
    backup, service = start_backup(connection, vm, [first])
    end_backup(service)
    incremental, service = start_backup(connection, vm, [first, second],
                                        from_checkpoint=backup.to_checkpoint_id)
    assert backup_modes(connection, vm, incremental) == {
        first.id: types.DiskBackupMode.INCREMENTAL, second.id: types.DiskBackupMode.FULL}
    end_backup(service)
    [_, latest] = _checkpoints(connection, vm).list()
    assert {d.id for d in latest.disks} == {first.id, second.id}


def test_a_backup_with_a_transfer_still_open_is_not_finalized(connection):
    # As the engine since 4.5.1: a client finalizes or cancels its transfers first.
    from tests.simulator.support import finalize, start_transfer

    vm = vm_named(connection, "small-vm1")
    disk = vm_disks(connection, vm)[0]
    backup, service = start_backup(connection, vm, [disk])
    _, transfer = start_transfer(connection, disk=types.Disk(id=disk.id), backup=types.Backup(id=backup.id),
                                 direction=types.ImageTransferDirection.DOWNLOAD, format=types.DiskFormat.RAW)
    with pytest.raises(sdk.Error, match="active image transfers"):
        service.finalize()
    assert service.get().phase == types.BackupPhase.READY
    assert finalize(transfer).phase == types.ImageTransferPhase.FINISHED_SUCCESS
    assert end_backup(service).phase == types.BackupPhase.SUCCEEDED
