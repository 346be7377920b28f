"""Restores into another data center: storage domains and target VMs checked before anything is
created, NICs plugged into the target's own networks.

The simulator is seeded with two data centers (two-dc), each with its own ovirtmgmt:
Default (cluster Default, data1, data2, small-vm1 up, small-vm2 down) and Remote
(cluster Remote, remote1, remote-vm1 down). It refuses, as oVirt does, to attach a disk
to a VM of another data center, to hot plug a disk on an interface other than VirtIO or
VirtIO-SCSI, and to plug a NIC into another data center's network, but only after the disks
were made.
"""

import pytest

from jobs.restore.requests import DISKS, RestoreRequest
from plugin import engine as ovirt
from tests.restore.points import SourceDisk, write_restore_point
from tests.restore.stack import same_image, session_log

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    from simulator.testing import running_simulator

    with running_simulator(tmp_path_factory.mktemp("sim") / "state", seed="two-dc", delays=0.1) as handle:
        yield handle


def engine_state(stack) -> tuple[set, set]:
    """The engine's disk ids and VM names."""
    with stack.engine() as engine:
        return {d.id for d in ovirt.list_disks(engine)}, {vm.name for vm in ovirt.list_vms(engine)}


def assert_refused_untouched(stack, session, before, *messages) -> None:
    assert session.state == "failed", session_log(session)
    for message in messages:
        assert message in session.summary, session.summary
    assert "Created disk" not in session_log(session)
    assert engine_state(stack) == before


def test_a_vm_restore_fails_first_on_a_storage_domain_outside_the_target_clusters_data_center(stack):
    point, _ = stack.back_up("small-vm2", label="to-remote")
    data_disk = next(d for d in point.disks if d["name"] == "small-vm2_data")
    before = engine_state(stack)

    # Into Remote, where each disk was (data1, data2 of Default).
    session = stack.restore(RestoreRequest(point=point.pk, name="vm2-remote", cluster="Remote"))
    assert_refused_untouched(stack, session, before, "was on storage domain 'data1', which is not attached "
                             "to data center 'Remote', where cluster 'Remote' is", "usable there: remote1")

    # Into Default, one disk on Remote's domain.
    session = stack.restore(RestoreRequest(point=point.pk, name="vm2-split", cluster="Default",
                                           disk_storage_domains={data_disk["id"]: "remote1"}))
    assert_refused_untouched(stack, session, before, "storage domain 'remote1' is not attached to data "
                             "center 'Default'", "usable there: data1, data2")


def test_a_disk_for_a_vm_of_another_data_center_must_go_to_a_storage_domain_there(stack):
    point, _ = stack.back_up("small-vm2", label="disk-to-remote")
    os_disk = next(d for d in point.disks if d["name"] == "small-vm2_os")
    before = engine_state(stack)

    session = stack.restore(RestoreRequest(point=point.pk, kind=DISKS, disks=[os_disk["id"]], vm="remote-vm1"))
    assert_refused_untouched(stack, session, before, "disk small-vm2_os was on storage domain 'data1'",
                             "where VM 'remote-vm1' (cluster 'Remote') is", "usable there: remote1")

    session = stack.restore(RestoreRequest(point=point.pk, kind=DISKS, disks=[os_disk["id"]], vm="remote-vm1",
                                           storage_domain="remote1"))

    assert session.state == "success", session_log(session) + stack.logs()
    with stack.engine() as engine:
        vm = ovirt.find_vm(engine, "remote-vm1")
        names = {ovirt.get_disk(engine, a.disk_id).name for a in vm.disk_attachments}
    assert "small-vm2_os_restored" in names


def test_a_sata_disk_restored_into_a_running_vm_is_attached_inactive(stack):
    with stack.engine() as engine:
        vm = ovirt.find_vm(engine, "small-vm2")
        ovf = ovirt.get_vm_ovf(engine, vm.id).replace('disk-interface="VirtIO_SCSI"', 'disk-interface="SATA"')
        disk = ovirt.get_disk(engine, vm.disk_attachments[0].disk_id)
        assert ovirt.find_vm(engine, "small-vm1").status == "up"
    path, fmt = stack.sim.disk_image(disk.id)
    point = write_restore_point(stack.repository, vm_id=vm.id, vm_name=vm.name, ovf=ovf, vm=stack.vm(vm.name),
                                disks=[SourceDisk(disk.id, disk.name, path, fmt, disk.format)],
                                folder=stack.output_dir)

    session = stack.restore(RestoreRequest(point=point.pk, kind=DISKS, disks=[disk.id], vm="small-vm1"))

    # The engine hot plugs no SATA disk: it goes in inactive, to be activated once the VM is down.
    assert session.state == "warning", session_log(session) + stack.logs()
    assert f"{disk.name}_restored (sata) attached inactive" in session_log(session)
    with stack.engine() as engine:
        attachments = ovirt.find_vm(engine, "small-vm1").disk_attachments
        restored = {ovirt.get_disk(engine, a.disk_id).name: a for a in attachments}
    attachment = restored[f"{disk.name}_restored"]
    assert (attachment.interface, attachment.active) == ("sata", False)


def test_a_disk_the_engine_refuses_to_attach_after_the_upload_is_kept_floating(stack):
    with stack.engine() as engine:
        vm = ovirt.find_vm(engine, "small-vm2")
        ovf = ovirt.get_vm_ovf(engine, vm.id)
        disk = ovirt.get_disk(engine, vm.disk_attachments[0].disk_id)
    path, fmt = stack.sim.disk_image(disk.id)
    point = write_restore_point(stack.repository, vm_id=vm.id, vm_name=vm.name, ovf=ovf, vm=stack.vm(vm.name),
                                disks=[SourceDisk(disk.id, disk.name, path, fmt, disk.format)],
                                folder=stack.output_dir)
    # As when the VM starts between the wait and the attach of a disk it can't hot plug.
    before, _ = engine_state(stack)
    stack.sim.cli("fault", "add", "fail", "--match", "POST diskattachments", "--count", "1", "--status", "409")

    session = stack.restore(RestoreRequest(point=point.pk, kind=DISKS, disks=[disk.id], vm="small-vm1"))

    assert session.state == "warning", session_log(session) + stack.logs()
    assert "Removing what this restore created" not in session_log(session)
    assert f"left floating: {disk.name}_restored" in session_log(session)
    with stack.engine() as engine:
        kept = [d for d in ovirt.list_disks(engine) if d.id not in before]
        attached = {a.disk_id for a in ovirt.find_vm(engine, "small-vm1").disk_attachments}
    assert [d.name for d in kept] == [f"{disk.name}_restored"] and kept[0].id not in attached
    assert same_image(path, fmt, *stack.sim.disk_image(kept[0].id))


def ovirtmgmt_profiles(engine) -> dict[str, str]:
    """Data center name → the id of its ovirtmgmt's vNIC profile."""
    names = {dc.id: dc.name for dc in ovirt.list_data_centers(engine)}
    networks = {n.id: names[n.data_center_id] for n in ovirt.list_networks(engine) if n.name == "ovirtmgmt"}
    return {networks[p.network_id]: p.id for p in ovirt.list_vnic_profiles(engine) if p.network_id in networks}


def test_a_restored_vm_keeps_its_nic_on_the_ovirtmgmt_of_the_data_center_it_goes_to(stack):
    point, _ = stack.back_up("remote-vm1", label="nics")

    # Beside the original in Remote, as it was; then into Default, ovirtmgmt mapped by name.
    beside = stack.restore(RestoreRequest(point=point.pk, name="remote-vm1-copy", cluster="Remote"))
    moved = stack.restore(RestoreRequest(point=point.pk, name="remote-vm1-moved", cluster="Default",
                                         storage_domain="data1", networks={"ovirtmgmt": "ovirtmgmt"}))

    assert (beside.state, moved.state) == ("success", "success"), session_log(beside) + session_log(moved)
    with stack.engine() as engine:
        profiles = ovirtmgmt_profiles(engine)
        for name, data_center in (("remote-vm1-copy", "Remote"), ("remote-vm1-moved", "Default")):
            assert [nic.vnic_profile_id for nic in ovirt.find_vm(engine, name).nics] == [profiles[data_center]]

