"""The simulator's inventory as the unmodified ovirtsdk4 reads it.

These tests read, or change and restore, so one simulator serves the module (the suite's time).
"""

import datetime
import ssl
import urllib.error
import urllib.request

import ovirtsdk4 as sdk
import ovirtsdk4.types as types
import pytest

from simulator.testing import leftover_processes, running_simulator
from tests.simulator.support import vm_named


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    """One simulator for this module's tests; no process of it may be left afterwards."""
    state_dir = tmp_path_factory.mktemp("sim-api")
    with running_simulator(state_dir, seed="small", delays=0.1) as handle:
        yield handle
    assert leftover_processes(state_dir) == []


@pytest.fixture(scope="module")
def connection(sim):
    """An ovirtsdk4 connection shared by the module's tests."""
    conn = sim.connection()
    yield conn
    conn.close()

COLLECTIONS = {
    "data_centers": 1, "clusters": 1, "hosts": 1, "storage_domains": 2, "networks": 2,
    "vnic_profiles": 2, "templates": 1, "tags": 2, "vms": 2, "disks": 4,
}


def test_it_lists_every_collection(connection):
    system = connection.system_service()
    for name, count in COLLECTIONS.items():
        items = getattr(system, f"{name}_service")().list()
        assert len(items) == count, name
        assert all(item.id and item.href.startswith("/ovirt-engine/api/") for item in items)
    assert system.events_service().list()


def test_the_root_shows_the_product_and_version(connection):
    api = connection.system_service().get()
    assert api.product_info.name == "oVirt Engine"
    assert api.product_info.version.major == 4
    assert api.time.tzinfo is not None


def test_entities_read_with_enums_dates_and_links(connection):
    system = connection.system_service()
    vm = vm_named(connection, "small-vm1")
    assert vm.status == types.VmStatus.UP
    assert vm.cpu.topology.sockets == 1 and vm.memory > 0 and vm.os.type
    assert vm.creation_time < datetime.datetime.now(datetime.UTC)
    assert connection.follow_link(vm.cluster).name == "Default"
    disks = system.disks_service().list()
    assert {d.format for d in disks} == {types.DiskFormat.COW, types.DiskFormat.RAW}
    assert {d.backup for d in disks} == {types.DiskBackup.INCREMENTAL, types.DiskBackup.NONE}
    assert all(d.status == types.DiskStatus.OK and 0 < d.actual_size < d.provisioned_size
               for d in disks)
    domain = system.storage_domains_service().list()[0]
    assert domain.used > 0 and domain.available > 0 and domain.type == types.StorageDomainType.DATA
    host = system.hosts_service().list()[0]
    assert host.status == types.HostStatus.UP
    nics = system.vms_service().vm_service(vm.id).nics_service().list()
    assert nics[0].mac.address.startswith("56:6f:1a")
    assert connection.follow_link(nics[0].vnic_profile).name == "ovirtmgmt"


def test_searches_clients_use(connection):
    vms = connection.system_service().vms_service()
    assert [v.name for v in vms.list(search="name=small-vm2")] == ["small-vm2"]
    assert len(vms.list(search="name=small-*")) == 2
    vm = vms.list()[0]
    assert [v.id for v in vms.list(search=f"id={vm.id}")] == [vm.id]
    assert vms.list(search="name=nothing") == []
    assert len(vms.list(max=1)) == 1
    events = connection.system_service().events_service()
    assert events.list(search="severity=normal")
    assert events.list(search="description=*seeded*")


def test_follow_inlines_attachments_tags_and_nics(connection):
    vm = connection.system_service().vms_service().list(
        search="name=small-vm1", follow="tags,disk_attachments,nics")[0]
    assert len(vm.disk_attachments) == 2 and vm.disk_attachments[0].interface
    assert len(vm.nics) == 1


def test_all_content_gives_the_ovf(connection):
    vm = vm_named(connection, "small-vm1")
    full = connection.system_service().vms_service().vm_service(vm.id).get(all_content=True)
    assert full.initialization.configuration.type == types.ConfigurationType.OVF
    assert "ovf:Envelope" in full.initialization.configuration.data
    assert vm.name in full.initialization.configuration.data


def test_unknown_ids_answer_404(connection):
    vms = connection.system_service().vms_service()
    with pytest.raises(sdk.NotFoundError):
        vms.vm_service("00000000-1111-2222-3333-444444444444").get()
    with pytest.raises(sdk.NotFoundError):
        connection.system_service().disks_service().disk_service("nope").get()


def test_power_actions_and_their_conflicts(connection):
    vms = connection.system_service().vms_service()
    service = vms.vm_service(vm_named(connection, "small-vm2").id)
    service.start()
    with pytest.raises(sdk.Error) as conflict:
        service.start()
    assert conflict.value.code == 409
    service.stop()
    assert service.get().status == types.VmStatus.DOWN


def test_a_wrong_password_fails_sso(sim):
    connection = sim.connection(password="wrong")
    with pytest.raises(sdk.AuthError):
        connection.system_service().get()
    connection.close(logout=False)


def _status_with_token(sim, token: str) -> int:
    request = urllib.request.Request(sim.url, headers={"Authorization": f"Bearer {token}",
                                                       "Version": "4"})
    context = ssl.create_default_context(cafile=str(sim.ca_file))
    try:
        with urllib.request.urlopen(request, context=context) as answer:
            return answer.status
    except urllib.error.HTTPError as error:
        return error.code


def test_logout_revokes_the_token(sim):
    connection = sim.connection()
    connection.authenticate()
    token = connection._sso_token
    assert _status_with_token(sim, token) == 200
    connection.close()
    assert _status_with_token(sim, token) == 401


def test_clients_add_events_and_change_the_backup_flag_of_disks(connection):
    system = connection.system_service()
    event = system.events_service().add(types.Event(
        description="backup of small-vm1 started", severity=types.LogSeverity.NORMAL,
        origin="vbr", custom_id=4242))
    assert event.id and event.time.tzinfo is not None
    assert system.events_service().list(search="description=backup of small-vm1*")
    cow_disk, raw_disk = (system.disks_service().list(search=f"name=small-vm1_{n}")[0]
                          for n in ("os", "data"))
    service = system.disks_service().disk_service(cow_disk.id)
    assert service.update(types.Disk(backup=types.DiskBackup.NONE)).backup == \
        types.DiskBackup.NONE
    with pytest.raises(sdk.Error) as raw:
        system.disks_service().disk_service(raw_disk.id).update(
            types.Disk(backup=types.DiskBackup.INCREMENTAL))
    assert raw.value.code == 409
    service.update(types.Disk(backup=types.DiskBackup.INCREMENTAL))
