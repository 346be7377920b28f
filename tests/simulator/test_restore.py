"""Creation for restores: a VM from an OVF or from Blank, disks attached and NICs added."""

import ovirtsdk4 as sdk
import ovirtsdk4.types as types
import pytest

from tests.simulator.support import vm_named, wait_disk_ok, wait_for

MiB = 2**20


def _new_disk(connection, name: str):
    domain = connection.system_service().storage_domains_service().list()[0]
    disk = connection.system_service().disks_service().add(types.Disk(
        name=name, format=types.DiskFormat.COW, provisioned_size=16 * MiB,
        storage_domains=[types.StorageDomain(id=domain.id)]))
    return wait_disk_ok(connection, disk.id)


def test_it_creates_a_vm_from_an_ovf_and_attaches_disks_and_nics(connection):
    vms = connection.system_service().vms_service()
    source = vms.vm_service(vm_named(connection, "small-vm1").id).get(all_content=True)
    source_macs = {n.mac.address for n in vms.vm_service(source.id).nics_service().list()}
    vm = vms.add(types.Vm(
        name="small-vm1-restored", cluster=types.Cluster(name="Default"),
        initialization=types.Initialization(
            regenerate_ids=True,
            configuration=types.Configuration(type=types.ConfigurationType.OVF,
                                              data=source.initialization.configuration.data))))
    assert vm.id != source.id
    assert vm.memory == source.memory and vm.cpu.topology.cores == source.cpu.topology.cores
    assert vm.status == types.VmStatus.DOWN
    service = vms.vm_service(vm.id)
    restored_nics = service.nics_service().list()
    assert [n.name for n in restored_nics] == ["nic1"]
    assert not source_macs & {n.mac.address for n in restored_nics}

    disk = _new_disk(connection, "restored_os")
    attachment = service.disk_attachments_service().add(types.DiskAttachment(
        disk=types.Disk(id=disk.id), interface=types.DiskInterface.VIRTIO_SCSI, bootable=True,
        active=True))
    assert attachment.bootable and attachment.interface == types.DiskInterface.VIRTIO_SCSI
    profile = connection.system_service().vnic_profiles_service().list()[0]
    nic = service.nics_service().add(types.Nic(name="nic2",
                                               vnic_profile=types.VnicProfile(id=profile.id)))
    assert nic.mac.address
    assert len(service.nics_service().list()) == 2
    assert [a.id for a in service.disk_attachments_service().list()] == [disk.id]
    with pytest.raises(sdk.Error) as twice:
        service.disk_attachments_service().add(types.DiskAttachment(
            disk=types.Disk(id=disk.id), interface=types.DiskInterface.VIRTIO_SCSI))
    assert twice.value.code == 409


def test_it_creates_a_vm_from_blank_and_refuses_a_used_name(connection):
    vms = connection.system_service().vms_service()
    host = connection.system_service().hosts_service().list()[0]
    vm = vms.add(types.Vm(
        name="fresh", cluster=types.Cluster(name="Default"), template=types.Template(name="Blank"),
        memory=512 * MiB, placement_policy=types.VmPlacementPolicy(hosts=[types.Host(id=host.id)]),
        initialization=types.Initialization(host_name="fresh", custom_script="#cloud-config\n")))
    assert vm.memory == 512 * MiB
    assert connection.follow_link(vm.template).name == "Blank"
    assert vm.initialization.custom_script == "#cloud-config\n"
    vms.vm_service(vm.id).start(use_cloud_init=True)
    started = wait_for(vms.vm_service(vm.id).get, lambda v: v.status == types.VmStatus.UP)
    assert started.host.id == host.id
    vms.vm_service(vm.id).stop()
    with pytest.raises(sdk.Error) as taken:
        vms.add(types.Vm(name="fresh", cluster=types.Cluster(name="Default"),
                         template=types.Template(name="Blank")))
    assert taken.value.code == 409
    with pytest.raises(sdk.Error) as incomplete:
        vms.add(types.Vm(name="no-cluster"))
    assert incomplete.value.code == 400
    vms.vm_service(vm.id).remove()
    with pytest.raises(sdk.NotFoundError):
        vms.vm_service(vm.id).get()


def _disk_on(connection, name: str, domain_name: str):
    domain = connection.system_service().storage_domains_service().list(search=f"name={domain_name}")[0]
    disk = connection.system_service().disks_service().add(types.Disk(
        name=name, format=types.DiskFormat.COW, provisioned_size=16 * MiB,
        storage_domains=[types.StorageDomain(id=domain.id)]))
    return wait_disk_ok(connection, disk.id)


def _attach(connection, vm_name: str, disk, interface=types.DiskInterface.VIRTIO_SCSI, active=True):
    vm = vm_named(connection, vm_name)
    service = connection.system_service().vms_service().vm_service(vm.id).disk_attachments_service()
    return service.add(types.DiskAttachment(disk=types.Disk(id=disk.id), interface=interface, active=active))


def test_a_running_vm_is_hot_plugged_only_virtio_and_virtio_scsi_disks(connection):
    assert vm_named(connection, "small-vm1").status == types.VmStatus.UP
    disks = {name: _disk_on(connection, f"{name}-data", "data1") for name in ("ide", "sata", "spapr", "virtio")}
    refusals = {"ide": (types.DiskInterface.IDE, "to an IDE interface is not supported"),
                "sata": (types.DiskInterface.SATA, "interface is not supported by the VM OS: rhel_8x64"),
                "spapr": (types.DiskInterface.SPAPR_VSCSI, "to a sPAPR VSCSI interface is not supported")}

    for name, (interface, message) in refusals.items():
        with pytest.raises(sdk.Error) as refused:
            _attach(connection, "small-vm1", disks[name], interface)
        assert refused.value.code == 409 and message in str(refused.value), name

    assert _attach(connection, "small-vm1", disks["virtio"], types.DiskInterface.VIRTIO).active
    # Attached inactive (nothing is plugged), or into a VM that is down, they go.
    assert not _attach(connection, "small-vm1", disks["sata"], types.DiskInterface.SATA, active=False).active
    assert _attach(connection, "small-vm2", disks["ide"], types.DiskInterface.IDE).interface == types.DiskInterface.IDE


@pytest.fixture
def two_dc(tmp_path):
    """A simulator seeded with two data centers (Default and Remote)."""
    from simulator.testing import leftover_processes, running_simulator

    with running_simulator(tmp_path / "sim", seed="two-dc", delays=0.1) as handle:
        conn = handle.connection()
        yield conn
        conn.close()
    assert leftover_processes(tmp_path / "sim") == []


def test_a_disk_is_attached_only_to_a_vm_of_its_storage_domains_data_center(two_dc):
    system = two_dc.system_service()
    assert sorted(dc.name for dc in system.data_centers_service().list()) == ["Default", "Remote"]
    disk = _disk_on(two_dc, "remote-data", "remote1")

    with pytest.raises(sdk.Error) as refused:
        _attach(two_dc, "small-vm2", disk)

    assert refused.value.code == 409 and "Data Center does not contain" in str(refused.value)
    assert _attach(two_dc, "remote-vm1", disk).disk.id == disk.id


def _ovirtmgmt_profile(connection, data_center_name: str) -> str:
    """The id of the vNIC profile of ovirtmgmt in that data center (each has its own)."""
    system = connection.system_service()
    data_center = system.data_centers_service().list(search=f"name={data_center_name}")[0]
    networks = {n.id for n in system.networks_service().list()
                if n.name == "ovirtmgmt" and n.data_center.id == data_center.id}
    return next(p.id for p in system.vnic_profiles_service().list() if p.network.id in networks)


def test_a_vm_made_from_an_ovf_gets_the_network_of_its_own_data_center(two_dc):
    vms = two_dc.system_service().vms_service()
    source = vms.vm_service(vm_named(two_dc, "small-vm1").id).get(all_content=True)

    vm = vms.add(types.Vm(
        name="small-vm1-remote", cluster=types.Cluster(name="Remote"),
        initialization=types.Initialization(regenerate_ids=True, configuration=types.Configuration(
            type=types.ConfigurationType.OVF, data=source.initialization.configuration.data))))

    nics = vms.vm_service(vm.id).nics_service().list()
    assert [n.vnic_profile.id for n in nics] == [_ovirtmgmt_profile(two_dc, "Remote")]


def test_a_nic_is_refused_a_vnic_profile_of_another_data_center(two_dc):
    vm = vm_named(two_dc, "remote-vm1")
    nics = two_dc.system_service().vms_service().vm_service(vm.id).nics_service()

    with pytest.raises(sdk.Error) as refused:
        nics.add(types.Nic(name="nic2", vnic_profile=types.VnicProfile(id=_ovirtmgmt_profile(two_dc, "Default"))))

    assert refused.value.code == 409
    assert "The specified Logical Network doesn't exist in the current Cluster" in str(refused.value)
    assert [n.name for n in nics.list()] == ["nic1"]
    remote = _ovirtmgmt_profile(two_dc, "Remote")
    assert nics.add(types.Nic(name="nic2", vnic_profile=types.VnicProfile(id=remote))).vnic_profile.id == remote
