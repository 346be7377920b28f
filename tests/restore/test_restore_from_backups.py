"""Restore points made by real backup sessions (full, then incremental) restored as new VMs."""

import pytest

from jobs.models import RestorePoint
from jobs.restore.requests import RestoreRequest
from jobs.services import backup_vms
from plugin import engine as ovirt
from tests.restore.points import qemu_format
from tests.restore.stack import same_image, session_log

pytestmark = pytest.mark.integration


def back_up_for_real(stack, vm_name: str) -> tuple[RestorePoint, dict]:
    """A backup session of the VM through the whole path; its restore point and the guest's disks then."""
    session = stack.wait(backup_vms([stack.vm(vm_name)], stack.repository))
    assert session.state == "success", session_log(session) + stack.logs()
    point = RestorePoint.objects.filter(vm_name=vm_name).latest("time")
    images = {d["id"]: stack.guest_raw(d["id"], f"{point.type}-{point.pk}-{d['name']}") for d in point.disks}
    return point, images


def test_full_and_incremental_backups_come_back_as_new_vms_equal_to_the_disks_then(stack):
    full, full_images = back_up_for_real(stack, "small-vm2")
    stack.sim.cli("guest-write", "--vm", "small-vm2", "--offset", "6M", "--length", "1M", "--seed", "21")
    incremental, incremental_images = back_up_for_real(stack, "small-vm2")
    assert (full.type, incremental.type) == ("full", "incremental")
    original = stack.configuration(full.vm_engine_id)

    for point, images, name in ((full, full_images, "vm2-from-full"),
                                (incremental, incremental_images, "vm2-from-incremental")):
        session = stack.restore(RestoreRequest(point=point.pk, name=name))

        assert session.state == "success", session_log(session) + stack.logs()
        with stack.engine() as engine:
            vm = ovirt.find_vm(engine, name)
        assert stack.configuration(vm.id) == original
        for row in session.tasks.get().disks:
            path, fmt = stack.sim.disk_image(row["new_disk_id"])
            assert same_image(path, qemu_format(fmt), images[row["id"]]), f"{name}: disk {row['name']} differs"
    source = next(iter(full_images))
    assert not same_image(full_images[source], "raw", incremental_images[source])
