"""Restore to the original location: replacing a running VM, and bringing back a deleted one."""

import pytest

from inventory.sync import sync_manager
from jobs.restore.requests import DISKS, RestoreRequest
from plugin import engine as ovirt
from tests.restore.points import qemu_format
from tests.restore.stack import same_image, session_log

pytestmark = pytest.mark.integration


def assert_vm_disks_equal(stack, vm, images) -> None:
    """Each disk of the VM equals the image of the source disk of the same name."""
    with stack.engine() as engine:
        names = {ovirt.get_disk(engine, a.disk_id).name: a.disk_id for a in vm.disk_attachments}
    point_disks = {name.removesuffix(".raw").split("-", 1)[1]: path for name, path in
                   ((p.name, p) for p in images.values())}
    assert set(names) == set(point_disks)
    for name, disk_id in names.items():
        path, fmt = stack.sim.disk_image(disk_id)
        assert same_image(path, qemu_format(fmt), point_disks[name]), f"disk {name} differs"


def test_in_place_restore_replaces_the_running_vm_once_every_disk_is_restored(stack):
    point, images = stack.back_up("small-vm1", label="inplace")
    configuration = stack.configuration(point.vm_engine_id)
    macs = stack.macs(point.vm_engine_id)
    stack.sim.cli("guest-write", "--vm", "small-vm1", "--offset", "0", "--length", "2M", "--seed", "3")

    session = stack.restore(RestoreRequest(point=point.pk, replace=True, power_on=True))

    assert session.state == "success", session_log(session) + stack.logs()
    log = session_log(session)
    # The original was stopped only after every disk was restored.
    assert log.index("Restored disk small-vm1_data") < log.index("stopping and replacing")
    with stack.engine() as engine:
        assert ovirt.list_vms(engine, search=f"id={point.vm_engine_id}") == [] or \
            ovirt.find_vm(engine, "small-vm1").id != point.vm_engine_id
        vm = ovirt.find_vm(engine, "small-vm1")
        assert vm.status == "up"
        assert ovirt.find_vm(engine, f"small-vm1-restoring-{session.pk}") is None
    assert stack.configuration(vm.id) == configuration
    assert stack.macs(vm.id) == macs
    assert_vm_disks_equal(stack, vm, images)


def test_restore_points_taken_before_an_in_place_restore_stay_with_the_re_created_vm(stack, capsys):
    import json

    from django.core.management import call_command

    from inventory.models import VM
    from jobs.models import ReplacedVm, Session, VmLock

    # A VM of its own (a copy of small-vm1): replacing it leaves the seeded VMs to the other tests.
    seed, _ = stack.back_up("small-vm1", label="seed")
    copied = stack.restore(RestoreRequest(point=seed.pk, name="inplace-vm"))
    assert copied.state == "success", session_log(copied) + stack.logs()
    sync_manager(stack.manager)
    point, _ = stack.back_up("inplace-vm", label="before")
    first = stack.restore(RestoreRequest(point=point.pk, replace=True))
    assert first.state == "success", session_log(first) + stack.logs()
    sync_manager(stack.manager)
    recreated = VM.objects.get(manager=stack.manager, name="inplace-vm", removed=False)
    assert recreated.engine_id != point.vm_engine_id
    assert ReplacedVm.objects.filter(manager=stack.manager, old_engine_id=point.vm_engine_id,
                                     engine_id=recreated.engine_id, session=first).exists()

    call_command("list_restore_points", "--vm", "inplace-vm", "--json")
    assert [r["id"] for r in json.loads(capsys.readouterr().out)] == [point.pk]

    # Replacing it again from the same restore point holds and replaces the re-created VM.
    backup = Session.objects.create(name="nightly", state="running")
    VmLock.acquire(recreated, backup)
    held = stack.restore(RestoreRequest(point=point.pk, replace=True))
    assert held.state == "failed" and f"held by session {backup.pk}" in held.summary
    VmLock.release(recreated, backup)
    again = stack.restore(RestoreRequest(point=point.pk, replace=True))
    assert again.state == "success", session_log(again) + stack.logs()
    with stack.engine() as engine:
        names = {vm.id: vm.name for vm in ovirt.list_vms(engine) if vm.name.startswith("inplace-vm")}
    assert list(names.values()) == ["inplace-vm"]  # replaced, not restored beside it
    assert not set(names) & {point.vm_engine_id, recreated.engine_id}


def test_a_vm_deleted_from_the_engine_comes_back_as_itself(stack):
    point, images = stack.back_up("small-vm2", label="deleted")
    configuration = stack.configuration(point.vm_engine_id)
    macs = stack.macs(point.vm_engine_id)
    with stack.engine() as engine:
        ovirt.delete_vm(engine, point.vm_engine_id)
        ovirt.wait_vm_gone(engine, point.vm_engine_id, timeout=60)
    sync_manager(stack.manager)
    assert stack.vm("small-vm2").removed

    session = stack.restore(RestoreRequest(point=point.pk, new_macs=False))

    assert session.state == "success", session_log(session) + stack.logs()
    with stack.engine() as engine:
        vm = ovirt.get_vm(engine, point.vm_engine_id)
    assert vm.name == "small-vm2"
    assert stack.configuration(vm.id) == configuration
    assert stack.macs(vm.id) == macs
    assert_vm_disks_equal(stack, vm, images)


def test_a_disk_comes_back_floating_or_attached_to_another_vm(stack):
    point, images = stack.back_up("small-vm1", label="disk")
    data = next(d for d in point.disks if d["name"] == "small-vm1_data")

    floating = stack.restore(RestoreRequest(point=point.pk, kind=DISKS, disks=["small-vm1_data"],
                                            storage_domain="data2", disk_format="cow"))
    attached = stack.restore(RestoreRequest(point=point.pk, kind=DISKS, disks=[data["id"]],
                                            vm="small-vm2"))

    for session in (floating, attached):
        assert session.state == "success", session_log(session) + stack.logs()
    new_floating = floating.tasks.get().disks[0]["new_disk_id"]
    new_attached = attached.tasks.get().disks[0]["new_disk_id"]
    with stack.engine() as engine:
        disk = ovirt.get_disk(engine, new_floating)
        domains = {sd.id: sd.name for sd in ovirt.list_storage_domains(engine)}
        vm2 = ovirt.find_vm(engine, "small-vm2")
    assert disk.name == "small-vm1_data_restored"
    assert disk.format == "cow"  # the source is raw: the format asked for wins
    assert domains[disk.storage_domain_id] == "data2"
    assert new_attached in [a.disk_id for a in vm2.disk_attachments]
    for new_id in (new_floating, new_attached):
        path, fmt = stack.sim.disk_image(new_id)
        assert same_image(path, qemu_format(fmt), images[data["id"]])


def test_restore_vm_with_wait_shows_progress_and_ends_with_the_vm_running(stack):
    from io import StringIO

    from django.core.management import call_command

    point, images = stack.back_up("small-vm1", label="command")
    out = StringIO()

    call_command("restore_vm", str(point.pk), "--name", "vm1-by-command", "--storage-domain", "data2",
                 "--power-on", "--wait", stdout=out)

    assert "ended: Success" in out.getvalue()
    assert "Powered on vm1-by-command" in out.getvalue()
    with stack.engine() as engine:
        vm = ovirt.find_vm(engine, "vm1-by-command")
        assert vm.status == "up"
        domains = {sd.id: sd.name for sd in ovirt.list_storage_domains(engine)}
        assert {domains[ovirt.get_disk(engine, a.disk_id).storage_domain_id]
                for a in vm.disk_attachments} == {"data2"}
    assert_vm_disks_equal(stack, vm, images)


def test_an_in_place_restore_is_refused_while_a_backup_holds_the_vm(stack):
    from jobs.models import Session, VmLock

    point, _ = stack.back_up("small-vm1", label="held")
    backup = Session.objects.create(name="nightly", state="running")
    VmLock.acquire(stack.vm("small-vm1"), backup)

    session = stack.restore(RestoreRequest(point=point.pk, replace=True))

    assert session.state == "failed"
    assert f"held by session {backup.pk} (nightly)" in session.summary
    with stack.engine() as engine:
        assert ovirt.find_vm(engine, "small-vm1").id == point.vm_engine_id


def test_a_network_mapping_that_names_no_profile_fails_before_anything_is_created(stack):
    point, _ = stack.back_up("small-vm1", label="typo")
    with stack.engine() as engine:
        disks_before = {d.id for d in ovirt.list_disks(engine)}

    session = stack.restore(RestoreRequest(point=point.pk, replace=True, networks={"ovirtmgmt": "bakend"}))

    assert session.state == "failed" and "bakend" in session.summary
    assert "Created disk" not in "\n".join(line.message for line in session.log_lines.all())
    with stack.engine() as engine:
        original = ovirt.find_vm(engine, "small-vm1")
        assert original.id == point.vm_engine_id and original.status == "up"
        assert {d.id for d in ovirt.list_disks(engine)} == disks_before
