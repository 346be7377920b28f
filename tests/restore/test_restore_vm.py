"""Entire VM restore as new VMs, and a failure mid-restore, against the simulator with real runners."""

from pathlib import Path

import pytest

from jobs.restore.requests import RestoreRequest
from plugin import engine as ovirt
from tests.restore.points import qemu_format
from tests.restore.stack import same_image, session_log

pytestmark = pytest.mark.integration


def restored_disks(stack, session) -> dict[str, str]:
    """Source disk id → the disk the session made for it."""
    return {row["id"]: row["new_disk_id"] for row in session.tasks.get().disks}


def assert_disks_equal(stack, session, images: dict[str, Path]) -> None:
    for source_id, new_id in restored_disks(stack, session).items():
        path, fmt = stack.sim.disk_image(new_id)
        assert path.exists()
        assert same_image(path, qemu_format(fmt), images[source_id]), f"disk {source_id} differs"


def test_full_and_incremental_restore_points_come_back_as_new_vms(stack):
    full, full_images = stack.back_up("small-vm2", label="full")
    stack.sim.cli("guest-write", "--vm", "small-vm2", "--offset", "1M", "--length", "3M", "--seed", "7")
    stack.sim.cli("guest-write", "--vm", "small-vm2", "--disk", "small-vm2_data", "--offset", "10M",
                  "--length", "64K", "--seed", "8")
    incremental, incremental_images = stack.back_up("small-vm2", parent=full, label="incremental")
    assert incremental.type == "incremental"
    original = stack.configuration(full.vm_engine_id)
    original_macs = stack.macs(full.vm_engine_id)

    for point, images, name in ((full, full_images, "vm2-full"),
                                (incremental, incremental_images, "vm2-incremental")):
        session = stack.restore(RestoreRequest(point=point.pk, name=name, new_macs=True))

        assert session.state == "success", session_log(session) + stack.logs()
        with stack.engine() as engine:
            vm = ovirt.find_vm(engine, name)
            assert vm is not None and vm.id != point.vm_engine_id
            assert vm.description == "small-vm2 (seed)"
        assert stack.configuration(vm.id) == original
        assert stack.macs(vm.id).isdisjoint(original_macs)
        # What a finished restore made is recorded as kept: reconcile never removes it.
        assert session.options["created"]["kept"] is True and vm.id in session.options["created"]["vms"]
        assert_disks_equal(stack, session, images)
    # The incremental restore point holds the guest's writes: the two restores differ.
    source = next(iter(full_images))
    assert not same_image(full_images[source], "raw", incremental_images[source])


def test_an_engine_failure_mid_restore_removes_what_it_made_and_leaves_the_original(stack):
    point, _ = stack.back_up("small-vm1", label="before-failure")
    with stack.engine() as engine:
        before = ovirt.get_vm(engine, point.vm_engine_id)
        disks_before = {d.id for d in ovirt.list_disks(engine)}
    assert before.status == "up"
    # Creating the VM fails: every disk is uploaded by then, the original not yet touched.
    stack.sim.cli("fault", "add", "fail", "--match", "POST vms", "--count", "1", "--status", "500")

    session = stack.restore(RestoreRequest(point=point.pk, replace=True))

    assert session.state == "failed", session_log(session)
    assert "Injected fault" in session.summary or "Injected fault" in session_log(session)
    with stack.engine() as engine:
        after = ovirt.get_vm(engine, point.vm_engine_id)
        assert after.status == "up"
        assert [a.disk_id for a in after.disk_attachments] == [a.disk_id for a in before.disk_attachments]
        assert {d.id for d in ovirt.list_disks(engine)} == disks_before
        assert not [t for t in ovirt.list_transfers(engine)
                    if ovirt.session_of(t.description) == str(session.pk) and t.phase == "transferring"]
        assert ovirt.find_vm(engine, f"small-vm1-restoring-{session.pk}") is None
    assert "Removing what this restore created" in session_log(session)
    created = session.options["created"]
    assert created["kept"] is False and created["disks"] == created["vms"] == created["transfers"] == []


def test_a_cancelled_restore_removes_what_it_created(stack):
    from jobs.restore.requests import submit_restore

    point, _ = stack.back_up("small-vm1", label="before-cancel")
    with stack.engine() as engine:
        disks_before = {d.id for d in ovirt.list_disks(engine)}
    # Every engine answer takes half a second: the cancel (seen within the heartbeat's second)
    # lands while the restore is still under way.
    stack.sim.cli("fault", "add", "slow", "--seconds", "0.5")
    try:
        session = submit_restore(RestoreRequest(point=point.pk, name="vm1-cancelled"))
        stack.wait(session, until=lambda s: "Created disk" in session_log(s))
        assert session.request_cancel()
    finally:
        stack.sim.cli("fault", "clear")

    session = stack.wait(session)

    assert session.state == "cancelled", session_log(session)
    with stack.engine() as engine:
        assert {d.id for d in ovirt.list_disks(engine)} == disks_before, session_log(session)
        assert ovirt.find_vm(engine, "vm1-cancelled") is None
        assert ovirt.get_vm(engine, point.vm_engine_id).status == "up"


def test_a_new_location_maps_networks_and_puts_each_disk_where_asked(stack):
    point, images = stack.back_up("small-vm2", label="elsewhere")
    data_disk = next(d for d in point.disks if d["name"] == "small-vm2_data")

    session = stack.restore(RestoreRequest(
        point=point.pk, name="vm2-elsewhere", cluster="Default", storage_domain="data1",
        disk_storage_domains={data_disk["id"]: "data2"}, networks={"ovirtmgmt": "backend", "storage": ""},
        new_macs=True, power_on=True))

    # The VM had no NIC on "storage": said, and the restore otherwise complete.
    assert session.state == "warning", session_log(session) + stack.logs()
    assert "the VM had no NIC on network storage" in session_log(session)
    with stack.engine() as engine:
        vm = ovirt.find_vm(engine, "vm2-elsewhere")
        profiles = {p.id: p.name for p in ovirt.list_vnic_profiles(engine)}
        domains = {sd.id: sd.name for sd in ovirt.list_storage_domains(engine)}
        placed = {ovirt.get_disk(engine, a.disk_id).name: domains[ovirt.get_disk(engine, a.disk_id).storage_domain_id]
                  for a in vm.disk_attachments}
    assert vm.status == "up"
    assert [profiles[n.vnic_profile_id] for n in vm.nics] == ["backend"]
    assert placed == {"small-vm2_os": "data1", "small-vm2_data": "data2"}
    assert_disks_equal(stack, session, images)


def test_reconcile_removes_what_a_dead_restore_session_created_and_keeps_what_one_finished(stack):
    from jobs.models import Session
    from jobs.restore.abandoned import clean_abandoned_restores

    point, _ = stack.back_up("small-vm1", label="abandoned")
    with stack.engine() as engine:
        domain = next(sd for sd in ovirt.list_storage_domains(engine) if sd.name == "data1")
        made = [ovirt.create_disk(engine, name=f"left-{n}", storage_domain_id=domain.id,
                                  provisioned_size=2**20, description="vbr:x restore") for n in range(2)]
    request = RestoreRequest(point=point.pk).to_options()
    dead = Session.objects.create(kind="restore", name="dead", state="failed", options={
        **request, "created": {"transfers": [], "vms": [], "disks": [made[0].id], "kept": False}})
    finished = Session.objects.create(kind="restore", name="done", state="success", options={
        **request, "created": {"transfers": [], "vms": [], "disks": [made[1].id], "kept": True}})

    with stack.engine() as engine:
        ovirt.wait_disk_ok(engine, made[0].id)
        cleaned = clean_abandoned_restores(engine, stack.manager)
        left = {d.id for d in ovirt.list_disks(engine)}

    assert [(c.session_id, c.kind, c.object_id, c.ok) for c in cleaned] == [(dead.pk, "disk", made[0].id, True)]
    assert made[0].id not in left and made[1].id in left
    dead.refresh_from_db()
    assert dead.options["created"]["disks"] == []
    assert finished.options["created"]["disks"] == [made[1].id]
