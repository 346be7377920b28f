"""Snapshots: create with chosen disks (locked, then ok), delete (merged, then 404), download."""

import json

import ovirtsdk4 as sdk
import ovirtsdk4.types as types
import pytest
from ovirt_imageio import client

from tests.simulator.support import (
    finalize,
    qemu_compare,
    snapshot_copy,
    start_transfer,
    vm_disks,
    vm_named,
    wait_for,
    wait_gone,
)


def _snapshot(connection, vm, description: str, disks):
    snapshots = connection.system_service().vms_service().vm_service(vm.id).snapshots_service()
    snapshot = snapshots.add(types.Snapshot(description=description, disk_attachments=[
        types.DiskAttachment(disk=types.Disk(id=d.id)) for d in disks]))
    assert snapshot.snapshot_status == types.SnapshotStatus.LOCKED
    service = snapshots.snapshot_service(snapshot.id)
    wait_for(service.get, lambda s: s.snapshot_status == types.SnapshotStatus.OK)
    return snapshot, service


def test_it_creates_and_deletes_a_snapshot_of_chosen_disks(sim, connection, tmp_path):
    vm = vm_named(connection, "small-vm1")
    os_disk, data_disk = vm_disks(connection, vm)
    snapshot, service = _snapshot(connection, vm, "before upgrade", [os_disk])
    listed = connection.system_service().vms_service().vm_service(vm.id).snapshots_service().list()
    assert [s.description for s in listed] == ["before upgrade", "Active VM"]
    assert [d.id for d in service.disks_service().list()] == [os_disk.id]
    chain = json.loads(sim.cli("disk-image", "--disk", os_disk.id, "--json").stdout)["chain"]
    assert len(chain) == 2
    sim.cli("guest-write", "--vm", "small-vm1", "--offset", "1M", "--length", "2M", "--seed", "7")
    path, fmt = sim.disk_image(os_disk.id)
    written = snapshot_copy(path, fmt, tmp_path / "written.qcow2")

    service.remove()
    wait_gone(service.get)
    chain = json.loads(sim.cli("disk-image", "--disk", os_disk.id, "--json").stdout)["chain"]
    assert len(chain) == 1
    path, fmt = sim.disk_image(os_disk.id)
    assert qemu_compare(path, fmt, written, "qcow2") == ""
    disk = connection.system_service().disks_service().disk_service(os_disk.id).get()
    assert disk.status == types.DiskStatus.OK


def test_a_disk_snapshot_downloads_as_it_was_when_taken(sim, connection, tmp_path):
    vm = vm_named(connection, "small-vm1")
    os_disk = vm_disks(connection, vm)[0]
    path, fmt = sim.disk_image(os_disk.id)
    before = snapshot_copy(path, fmt, tmp_path / "before.qcow2")
    snapshot, service = _snapshot(connection, vm, "backup", [os_disk])
    sim.cli("guest-write", "--vm", "small-vm1", "--offset", "0", "--length", "4M", "--seed", "3")
    disk_snapshot = service.disks_service().list()[0]
    domain = connection.system_service().storage_domains_service().list()[0]
    listed = (connection.system_service().storage_domains_service()
              .storage_domain_service(os_disk.storage_domains[0].id)
              .disk_snapshots_service().list())
    assert disk_snapshot.image_id in [d.id for d in listed]
    assert domain.id

    transfer, transfer_service = start_transfer(
        connection, snapshot=types.DiskSnapshot(id=disk_snapshot.image_id),
        direction=types.ImageTransferDirection.DOWNLOAD, format=types.DiskFormat.RAW)
    assert connection.follow_link(transfer.host).name == "host1"
    target = tmp_path / "snapshot.qcow2"
    client.download(transfer.transfer_url, str(target), str(sim.ca_file), fmt="qcow2")
    assert finalize(transfer_service).phase == types.ImageTransferPhase.FINISHED_SUCCESS
    assert qemu_compare(target, "qcow2", before, "qcow2") == ""
    now_path, now_fmt = sim.disk_image(os_disk.id)
    assert qemu_compare(target, "qcow2", now_path, now_fmt) != ""


def test_snapshot_conflicts(connection):
    vm = vm_named(connection, "small-vm1")
    snapshots = connection.system_service().vms_service().vm_service(vm.id).snapshots_service()
    with pytest.raises(sdk.Error) as missing:
        snapshots.add(types.Snapshot())
    assert missing.value.code == 400
    snapshots.add(types.Snapshot(description="first"))
    with pytest.raises(sdk.Error) as busy:
        snapshots.add(types.Snapshot(description="second"))
    assert busy.value.code == 409
