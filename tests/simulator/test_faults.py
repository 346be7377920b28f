"""Injected faults, armed and cleared with `python -m simulator fault`."""

import json

import ovirtsdk4 as sdk
import ovirtsdk4.types as types
import pytest
from ovirt_imageio import client

from tests.simulator.support import (
    finalize,
    start_transfer,
    vm_disks,
    vm_named,
    wait_for,
)


def _armed(sim) -> list[dict]:
    lines = sim.cli("fault", "list").stdout.splitlines()
    return [json.loads(line) for line in lines if "dataplane" not in line]


def test_the_next_calls_of_a_kind_fail_with_the_given_status(sim, connection):
    sim.cli("fault", "add", "fail", "--match", "GET vms", "--count", "2", "--status", "503",
            "--reason", "Service Unavailable")
    vms = connection.system_service().vms_service()
    for _ in range(2):
        with pytest.raises(sdk.Error) as failed:
            vms.list()
        assert failed.value.code == 503 and "Service Unavailable" in str(failed.value)
    assert len(vms.list()) == 2
    assert _armed(sim) == []


def test_a_fault_can_name_the_collection_of_the_call(sim, connection):
    sim.cli("fault", "add", "fail", "--match", "GET vms/diskattachments", "--count", "1")
    vms = connection.system_service().vms_service()
    vm = vm_named(connection, "small-vm1")
    assert vms.list()  # GET vms: not the named call
    with pytest.raises(sdk.Error):
        vms.vm_service(vm.id).disk_attachments_service().list()
    assert vms.vm_service(vm.id).disk_attachments_service().list()
    assert _armed(sim) == []


def test_a_slow_engine_still_answers_and_the_fault_clears(sim, connection):
    armed = json.loads(sim.cli("fault", "add", "slow", "--seconds", "0.2").stdout)
    assert _armed(sim)[0]["kind"] == "slow"
    assert connection.system_service().get().product_info.name == "oVirt Engine"
    sim.cli("fault", "clear", armed["id"])
    assert _armed(sim) == []


def test_a_transfer_sticks_in_finalizing_until_cleared(sim, connection):
    sim.cli("fault", "add", "stuck-finalizing", "--count", "1")
    disk = vm_disks(connection, vm_named(connection, "small-vm2"))[1]
    _, service = start_transfer(connection, disk=types.Disk(id=disk.id),
                                direction=types.ImageTransferDirection.DOWNLOAD,
                                format=types.DiskFormat.RAW)
    service.finalize()
    for _ in range(10):
        assert service.get().phase == types.ImageTransferPhase.FINALIZING_SUCCESS
    sim.cli("fault", "clear")
    done = wait_for(service.get, lambda t: t.phase == types.ImageTransferPhase.FINISHED_SUCCESS)
    assert done.phase == types.ImageTransferPhase.FINISHED_SUCCESS


def test_a_snapshot_stays_locked_until_cleared(sim, connection):
    sim.cli("fault", "add", "snapshot-locked")
    vm = vm_named(connection, "small-vm1")
    snapshots = connection.system_service().vms_service().vm_service(vm.id).snapshots_service()
    service = snapshots.snapshot_service(snapshots.add(types.Snapshot(description="s")).id)
    for _ in range(10):
        assert service.get().snapshot_status == types.SnapshotStatus.LOCKED
    sim.cli("fault", "clear")
    wait_for(service.get, lambda s: s.snapshot_status == types.SnapshotStatus.OK)


def test_imageio_connections_drop_after_the_given_bytes(sim, connection, tmp_path):
    sim.cli("fault", "add", "imageio-drop", "--bytes", "1M")
    disk = vm_disks(connection, vm_named(connection, "small-vm2"))[0]
    transfer, service = start_transfer(connection, disk=types.Disk(id=disk.id),
                                       direction=types.ImageTransferDirection.DOWNLOAD,
                                       format=types.DiskFormat.RAW)
    with pytest.raises(Exception):  # noqa: B017 - the client raises whatever the cut causes
        client.download(transfer.transfer_url, str(tmp_path / "cut.raw"), str(sim.ca_file),
                        fmt="raw")
    sim.cli("fault", "clear")
    fresh = wait_for(service.get, lambda t: t.transfer_url != transfer.transfer_url)
    client.download(fresh.transfer_url, str(tmp_path / "whole.raw"), str(sim.ca_file), fmt="raw")
    assert finalize(service).phase == types.ImageTransferPhase.FINISHED_SUCCESS


def test_an_unknown_fault_kind_is_refused_with_the_kinds_to_use(sim):
    done = sim.cli("fault", "add", "explode", check=False)
    assert done.returncode != 0 and "invalid choice" in done.stderr
