"""A restart in the middle of work finds the state as it was."""

import ovirtsdk4.types as types
from ovirt_imageio import client

from tests.simulator.support import (
    finalize,
    qemu_compare,
    start_transfer,
    vm_disks,
    vm_named,
    wait_for,
)


def test_a_restart_mid_way_keeps_the_state(sim, tmp_path):
    connection = sim.connection()
    vm = vm_named(connection, "small-vm1")
    snapshots = connection.system_service().vms_service().vm_service(vm.id).snapshots_service()
    snapshot = snapshots.add(types.Snapshot(description="kept"))
    wait_for(snapshots.snapshot_service(snapshot.id).get,
             lambda s: s.snapshot_status == types.SnapshotStatus.OK)
    sim.cli("fault", "add", "snapshot-locked")
    locked = snapshots.add(types.Snapshot(description="stuck"))
    disk = vm_disks(connection, vm_named(connection, "small-vm2"))[0]
    transfer, _ = start_transfer(connection, disk=types.Disk(id=disk.id),
                                 direction=types.ImageTransferDirection.DOWNLOAD,
                                 format=types.DiskFormat.RAW)
    sim.cli("guest-write", "--vm", "small-vm1", "--offset", "0", "--length", "1M")
    before = {v.id: v.name for v in connection.system_service().vms_service().list()}
    connection.close()

    sim.restart()

    connection = sim.connection()
    system = connection.system_service()
    assert {v.id: v.name for v in system.vms_service().list()} == before
    snapshots = system.vms_service().vm_service(vm.id).snapshots_service()
    assert snapshots.snapshot_service(snapshot.id).get().snapshot_status == \
        types.SnapshotStatus.OK
    assert snapshots.snapshot_service(locked.id).get().snapshot_status == \
        types.SnapshotStatus.LOCKED
    service = system.image_transfers_service().image_transfer_service(transfer.id)
    reopened = wait_for(service.get, lambda t: t.transfer_url != transfer.transfer_url)
    assert reopened.phase == types.ImageTransferPhase.TRANSFERRING
    target = tmp_path / "after-restart.raw"
    client.download(reopened.transfer_url, str(target), str(sim.ca_file), fmt="raw")
    assert finalize(service).phase == types.ImageTransferPhase.FINISHED_SUCCESS
    path, fmt = sim.disk_image(disk.id)
    assert qemu_compare(target, "raw", path, fmt) == ""
    sim.cli("fault", "clear")
    wait_for(snapshots.snapshot_service(locked.id).get,
             lambda s: s.snapshot_status == types.SnapshotStatus.OK)
    connection.close()
