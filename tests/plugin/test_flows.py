"""The facade's flows against the simulator: snapshots, disks, VMs, transfers, backups, checkpoints."""

import pytest

from plugin import engine as ovirt
from plugin.errors import Conflict, NotFound

MiB = 2**20


@pytest.fixture
def vm(conn):
    return ovirt.find_vm(conn, "small-vm1")


@pytest.fixture
def storage_domain(conn):
    return next(sd for sd in ovirt.list_storage_domains(conn) if sd.type == "data")


def test_inventory_reads_vms_with_their_disks_attached(conn):
    inventory = ovirt.read_inventory(conn)
    assert inventory.data_centers and inventory.clusters and inventory.hosts and inventory.networks
    vm = next(v for v in inventory.vms if v.name == "small-vm1")
    assert vm.cluster_id in {c.id for c in inventory.clusters}
    assert vm.memory > 0 and vm.cpus >= 1
    attached = {a.disk_id for a in vm.disk_attachments}
    assert attached and attached <= {d.id for d in inventory.disks}
    assert any(a.bootable for a in vm.disk_attachments)


def test_a_missing_vm_is_not_found(conn):
    with pytest.raises(NotFound):
        ovirt.get_vm(conn, "00000000-0000-0000-0000-00000000dead")
    assert ovirt.find_vm(conn, "no-such-vm") is None


def test_the_ovf_describes_the_vm_and_creates_a_copy(conn, vm):
    ovf = ovirt.get_vm_ovf(conn, vm.id)
    assert vm.name in ovf
    copy = ovirt.create_vm_from_ovf(conn, ovf=ovf, name="small-vm1-restored", cluster_id=vm.cluster_id,
                                    description=ovirt.description_tag("t1"))
    try:
        assert copy.name == "small-vm1-restored" and copy.id != vm.id
        assert ovirt.get_vm(conn, copy.id).memory == vm.memory
    finally:
        ovirt.delete_vm(conn, copy.id)
    ovirt.wait_vm_gone(conn, copy.id, timeout=60)


def test_snapshot_created_ready_listed_and_deleted(conn, vm):
    tag = ovirt.description_tag("t2", "snapshot flow")
    snapshot = ovirt.create_snapshot(conn, vm.id, tag)
    ready = ovirt.wait_snapshot_ready(conn, vm.id, snapshot.id, timeout=60)
    assert ready.status == "ok" and ovirt.session_of(ready.description) == "t2"
    disks = ovirt.list_snapshot_disks(conn, vm.id, snapshot.id)
    assert disks and all(d.image_id for d in disks)
    assert snapshot.id in {s.id for s in ovirt.list_snapshots(conn, vm.id)}
    ovirt.delete_snapshot(conn, vm.id, snapshot.id)
    ovirt.wait_snapshot_gone(conn, vm.id, snapshot.id, timeout=60)
    assert snapshot.id not in {s.id for s in ovirt.list_snapshots(conn, vm.id)}


def test_a_restore_disk_is_created_uploaded_to_and_deleted(conn, storage_domain):
    disk = ovirt.create_disk(conn, name="restored-disk", storage_domain_id=storage_domain.id,
                             provisioned_size=8 * MiB, format="cow", sparse=True,
                             description=ovirt.description_tag("t3"))
    try:
        disk = ovirt.wait_disk_ok(conn, disk.id, timeout=60)
        assert (disk.format, disk.provisioned_size) == ("cow", 8 * MiB)
        transfer = ovirt.create_transfer(conn, direction="upload", disk_id=disk.id, format="raw",
                                         description=ovirt.description_tag("t3"))
        ready = ovirt.wait_transfer_ready(conn, transfer.id, timeout=60)
        assert ready.transfer_url.startswith("https://") and ready.direction == "upload"
        assert transfer.id in {t.id for t in ovirt.list_transfers(conn)}
        ovirt.finalize_transfer(conn, transfer.id)
        done = ovirt.wait_transfer_finished(conn, transfer.id, disk.id, timeout=60)
        assert done.phase == "finished_success"
    finally:
        ovirt.delete_disk(conn, disk.id)
    ovirt.wait_disk_gone(conn, disk.id, timeout=60)


def test_a_disk_still_being_created_is_removed_once_it_unlocks(conn, storage_domain):
    disk = ovirt.create_disk(conn, name="cancelled-restore-disk", storage_domain_id=storage_domain.id,
                             provisioned_size=8 * MiB, description=ovirt.description_tag("t3b"))
    assert ovirt.get_disk(conn, disk.id).status == "locked"
    with pytest.raises(Conflict, match="locked"):  # what a plain delete gets meanwhile
        ovirt.delete_disk(conn, disk.id)

    assert ovirt.remove_disk(conn, disk.id, timeout=60)

    with pytest.raises(NotFound):
        ovirt.get_disk(conn, disk.id)
    assert not ovirt.remove_disk(conn, disk.id, timeout=60)


def test_a_running_vms_disk_is_refused_and_a_cancelled_download_releases_the_disk(conn, vm):
    running_disk = vm.disk_attachments[0].disk_id
    assert vm.status == "up"
    with pytest.raises(Conflict, match="snapshot"):
        ovirt.create_transfer(conn, direction="download", disk_id=running_disk, format="raw",
                              description=ovirt.description_tag("t4"))
    stopped = ovirt.find_vm(conn, "small-vm2")
    assert stopped.status == "down"
    disk_id = stopped.disk_attachments[0].disk_id
    transfer = ovirt.create_transfer(conn, direction="download", disk_id=disk_id, format="raw",
                                     description=ovirt.description_tag("t4"))
    ovirt.wait_transfer_ready(conn, transfer.id, timeout=60)
    ovirt.cancel_transfer(conn, transfer.id)
    phase = ovirt.wait_transfer_ended(conn, transfer.id, timeout=60)
    assert phase in ("finished_failure", "finished_cleanup", "gone")
    assert ovirt.wait_disk_ok(conn, disk_id, timeout=60).status == "ok"


def test_cancelling_a_transfer_that_is_ending_or_gone_is_not_an_error(conn):
    disk_id = ovirt.find_vm(conn, "small-vm2").disk_attachments[0].disk_id
    transfer = ovirt.create_transfer(conn, direction="download", disk_id=disk_id, format="raw",
                                     description=ovirt.description_tag("t6"))
    ovirt.wait_transfer_ready(conn, transfer.id, timeout=60)
    ovirt.finalize_transfer(conn, transfer.id)
    assert ovirt.get_transfer(conn, transfer.id).phase == "finalizing_success"
    assert ovirt.cancel_transfer(conn, transfer.id) is False  # the engine answers 409 in this phase
    assert ovirt.wait_transfer_ended(conn, transfer.id, timeout=60) in ("finished_success", "gone")
    assert ovirt.cancel_transfer(conn, transfer.id) is False
    assert ovirt.cancel_transfer(conn, "00000000-0000-0000-0000-00000000dead") is False


def test_deleting_what_is_gone_already_is_fine(conn, vm):
    missing = "00000000-0000-0000-0000-00000000dead"
    ovirt.delete_disk(conn, missing)
    ovirt.delete_vm(conn, missing)
    ovirt.delete_snapshot(conn, vm.id, missing)
    with pytest.raises(NotFound):  # a call that needs the object still says it is gone
        ovirt.get_disk(conn, missing)


def test_a_vm_is_built_started_stopped_and_deleted(conn, vm, storage_domain):
    profile = ovirt.list_vnic_profiles(conn)[0]
    spec = ovirt.VmSpec(name="worker-test", cluster_id=vm.cluster_id, memory=512 * MiB, cpus=1,
                        description=ovirt.description_tag("t5"))
    worker = ovirt.create_vm(conn, spec)
    try:
        ovirt.add_nic(conn, worker.id, name="nic1", vnic_profile_id=profile.id)
        assert [n.vnic_profile_id for n in ovirt.list_nics(conn, worker.id)] == [profile.id]
        disk = ovirt.create_disk(conn, name="worker-test-os", storage_domain_id=storage_domain.id,
                                 provisioned_size=4 * MiB)
        ovirt.wait_disk_ok(conn, disk.id, timeout=60)
        ovirt.attach_disk(conn, worker.id, disk.id, interface="virtio_scsi", bootable=True)
        ovirt.wait_vm_status(conn, worker.id, {"down"}, timeout=60)
        ovirt.start_vm(conn, worker.id, cloud_init_script="#cloud-config\n")  # for this run only
        assert ovirt.wait_vm_status(conn, worker.id, {"up"}, timeout=60).status == "up"
        assert ovirt.ensure_vm_down(conn, worker.id, timeout=60).status == "down"
        ovirt.start_vm(conn, worker.id)
        assert ovirt.wait_vm_status(conn, worker.id, {"up"}, timeout=60).status == "up"
    finally:
        assert ovirt.remove_vm(conn, worker.id, timeout=60)  # powered off first
    with pytest.raises(NotFound):
        ovirt.get_vm(conn, worker.id)
    assert not ovirt.remove_vm(conn, worker.id, timeout=60)


def test_a_vm_whose_disk_is_locked_by_a_snapshot_is_removed_once_the_lock_clears(conn, vm, storage_domain):
    made = ovirt.create_vm(conn, ovirt.VmSpec(name="locked-disk-vm", cluster_id=vm.cluster_id,
                                              memory=512 * MiB, cpus=1))
    disk = ovirt.create_disk(conn, name="locked-disk-vm-os", storage_domain_id=storage_domain.id,
                             provisioned_size=4 * MiB)
    ovirt.wait_disk_ok(conn, disk.id, timeout=60)
    ovirt.attach_disk(conn, made.id, disk.id)
    ovirt.create_snapshot(conn, made.id, ovirt.description_tag("t5b"))
    assert ovirt.get_disk(conn, disk.id).status == "locked"
    with pytest.raises(Conflict, match="locked"):  # what a plain delete gets meanwhile
        ovirt.delete_vm(conn, made.id)

    assert ovirt.remove_vm(conn, made.id, timeout=60)

    with pytest.raises(NotFound):
        ovirt.get_disk(conn, disk.id)


def test_backup_ready_with_disk_modes_then_finalized_and_checkpoint_deleted(conn, vm):
    disk_ids = [a.disk_id for a in vm.disk_attachments]
    backup = ovirt.start_backup(conn, vm.id, disk_ids, description=ovirt.description_tag("t6"))
    with pytest.raises(Conflict):
        ovirt.start_backup(conn, vm.id, disk_ids, description=ovirt.description_tag("t6"))
    ready = ovirt.wait_backup_phase(conn, vm.id, backup.id, {"ready"}, timeout=60)
    modes = {d.disk_id: d.backup_mode for d in ovirt.list_backup_disks(conn, vm.id, backup.id)}
    assert set(modes) == set(disk_ids) and set(modes.values()) <= {"full"}
    transfer = ovirt.create_transfer(conn, direction="download", disk_id=disk_ids[0],
                                     backup_id=backup.id, format="raw",
                                     description=ovirt.description_tag("t6"))
    assert ovirt.wait_transfer_ready(conn, transfer.id, timeout=60).backup_id in (backup.id, None)
    ovirt.finalize_transfer(conn, transfer.id)
    ovirt.wait_transfer_finished(conn, transfer.id, disk_ids[0], timeout=60)
    ovirt.finalize_backup(conn, vm.id, backup.id)
    assert ovirt.wait_backup_done(conn, vm.id, backup.id, timeout=60).phase == "succeeded"
    checkpoints = ovirt.list_checkpoints(conn, vm.id)
    assert ready.to_checkpoint_id in {c.id for c in checkpoints}
    deleted = ovirt.delete_root_checkpoint(conn, vm.id)
    assert deleted.id == checkpoints[0].id
    assert deleted.id not in {c.id for c in ovirt.list_checkpoints(conn, vm.id)}


def test_a_vm_is_renamed_and_redescribed_and_reports_its_boot_order(conn, vm):
    original = ovirt.get_vm(conn, vm.id)
    assert original.boot_devices and set(original.boot_devices) <= {"hd", "network", "cdrom"}
    try:
        changed = ovirt.update_vm(conn, vm.id, description=ovirt.description_tag("t7"))
        assert changed.description == ovirt.description_tag("t7") and changed.name == original.name
        assert ovirt.update_vm(conn, vm.id, name="small-vm1-renamed").name == "small-vm1-renamed"
    finally:
        ovirt.update_vm(conn, vm.id, name=original.name, description=original.description)
    assert ovirt.get_vm(conn, vm.id).description == original.description
