"""Image transfers through the real imageio daemon, with the unmodified ovirt_imageio.client."""

import subprocess
import sys
import uuid
from pathlib import Path

import ovirtsdk4 as sdk
import ovirtsdk4.types as types
import pytest
from ovirt_imageio import client

from tests.simulator.support import (
    finalize,
    qemu_compare,
    start_transfer,
    vm_disks,
    vm_named,
    wait_disk_ok,
    wait_for,
)

MiB = 2**20
OVIRT_IMG = str(Path(sys.executable).parent / "ovirt-img")


def test_a_downloaded_disk_is_identical_to_its_image(sim, connection, tmp_path):
    disk = vm_disks(connection, vm_named(connection, "small-vm2"))[0]
    transfer, service = start_transfer(
        connection, disk=types.Disk(id=disk.id), direction=types.ImageTransferDirection.DOWNLOAD,
        format=types.DiskFormat.RAW)
    assert transfer.transfer_url.startswith("https://") and transfer.proxy_url
    disks = connection.system_service().disks_service()
    assert disks.disk_service(disk.id).get().status == types.DiskStatus.LOCKED
    target = tmp_path / "download.qcow2"
    client.download(transfer.transfer_url, str(target), str(sim.ca_file), fmt="qcow2")
    done = finalize(service)
    assert done.phase == types.ImageTransferPhase.FINISHED_SUCCESS
    assert disks.disk_service(disk.id).get().status == types.DiskStatus.OK
    path, fmt = sim.disk_image(disk.id)
    assert qemu_compare(target, "qcow2", path, fmt) == ""


def test_an_uploaded_qcow2_reads_back_identical(sim, connection, tmp_path):
    source = tmp_path / "source.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(source), "32M"], check=True)
    for offset, pattern in ((0, 0x11), (5 * MiB, 0x22), (20 * MiB, 0x33)):
        subprocess.run(["qemu-io", "-f", "qcow2", "-c",
                        f"write -P {pattern} {offset} 1M", str(source)], check=True,
                       capture_output=True)
    domain = connection.system_service().storage_domains_service().list(search="name=data2")[0]
    disks = connection.system_service().disks_service()
    disk = disks.add(types.Disk(
        name="restored", format=types.DiskFormat.COW, provisioned_size=32 * MiB, sparse=True,
        backup=types.DiskBackup.INCREMENTAL,
        storage_domains=[types.StorageDomain(id=domain.id)]))
    assert disk.status == types.DiskStatus.LOCKED
    wait_disk_ok(connection, disk.id)
    transfer, service = start_transfer(
        connection, disk=types.Disk(id=disk.id), direction=types.ImageTransferDirection.UPLOAD,
        format=types.DiskFormat.RAW)
    client.upload(str(source), transfer.transfer_url, str(sim.ca_file))
    assert finalize(service).phase == types.ImageTransferPhase.FINISHED_SUCCESS
    path, fmt = sim.disk_image(disk.id)
    assert qemu_compare(source, "qcow2", path, fmt) == ""

    transfer, service = start_transfer(
        connection, disk=types.Disk(id=disk.id), direction=types.ImageTransferDirection.DOWNLOAD,
        format=types.DiskFormat.RAW)
    back = tmp_path / "back.raw"
    client.download(transfer.transfer_url, str(back), str(sim.ca_file), fmt="raw")
    finalize(service)
    assert qemu_compare(source, "qcow2", back, "raw") == ""
    assert disks.disk_service(disk.id).get().actual_size > 0


def test_transfer_conflicts_and_cancel(connection):
    system = connection.system_service()
    running_disk = vm_disks(connection, vm_named(connection, "small-vm1"))[0]
    with pytest.raises(sdk.Error) as running:
        system.image_transfers_service().add(types.ImageTransfer(
            disk=types.Disk(id=running_disk.id), direction=types.ImageTransferDirection.DOWNLOAD))
    assert running.value.code == 409
    disk = vm_disks(connection, vm_named(connection, "small-vm2"))[1]
    transfer, service = start_transfer(
        connection, disk=types.Disk(id=disk.id), direction=types.ImageTransferDirection.DOWNLOAD,
        format=types.DiskFormat.RAW)
    with pytest.raises(sdk.Error) as second:
        system.image_transfers_service().add(types.ImageTransfer(
            disk=types.Disk(id=disk.id), direction=types.ImageTransferDirection.DOWNLOAD))
    assert second.value.code == 409
    with pytest.raises(sdk.Error) as locked:
        system.disks_service().disk_service(disk.id).remove()
    assert locked.value.code == 409
    service.cancel()
    done = wait_for(service.get, lambda t: t.phase == types.ImageTransferPhase.FINISHED_FAILURE)
    assert done.id == transfer.id
    assert wait_disk_ok(connection, disk.id).status == types.DiskStatus.OK


def test_an_idle_transfer_is_cancelled_by_its_timeout_policy(connection):
    disk = vm_disks(connection, vm_named(connection, "small-vm2"))[1]
    transfer, service = start_transfer(
        connection, disk=types.Disk(id=disk.id), direction=types.ImageTransferDirection.DOWNLOAD,
        format=types.DiskFormat.RAW, inactivity_timeout=1,
        timeout_policy=types.ImageTransferTimeoutPolicy.CANCEL)
    done = wait_for(service.get, lambda t: t.phase == types.ImageTransferPhase.FINISHED_FAILURE)
    assert done.timeout_policy == types.ImageTransferTimeoutPolicy.CANCEL
    events = connection.system_service().events_service().list(search="description=*idle*")
    assert events and transfer.id


def test_ovirt_img_uploads_and_downloads_a_disk(sim, connection, tmp_path):
    source = tmp_path / "source.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(source), "20M"], check=True)
    subprocess.run(["qemu-io", "-f", "qcow2", "-c", "write -P 0x44 1M 3M", str(source)],
                   check=True, capture_output=True)
    password = tmp_path / "password"
    password.write_text(sim.password)
    engine = sim.url.removesuffix("/ovirt-engine/api")
    common = ["--engine-url", engine, "--username", sim.username, "--password-file",
              str(password), "--cafile", str(sim.ca_file)]
    disk_id = str(uuid.uuid4())
    subprocess.run([OVIRT_IMG, "upload-disk", *common, "-s", "data1", "--disk-id", disk_id,
                    "--name", "uploaded", str(source)], check=True, capture_output=True)
    disk = connection.system_service().disks_service().disk_service(disk_id).get()
    assert disk.alias == "uploaded" and disk.status == types.DiskStatus.OK
    target = tmp_path / "downloaded.qcow2"
    subprocess.run([OVIRT_IMG, "download-disk", *common, disk_id, str(target)], check=True,
                   capture_output=True)
    assert qemu_compare(source, "qcow2", target, "qcow2") == ""
