"""The inventory against the simulator over real HTTPS: commands, sync, resync, failures, secrecy."""

import json
import logging

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse
from ovirtsdk4 import types

from inventory.choices import ManagerState
from inventory.models import VM, Disk, Manager
from inventory.tasks import sync_manager_task
from tests.plugin.conftest import other_ca_pem
from tests.support.processes import free_port

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    from simulator.testing import running_simulator

    with running_simulator(tmp_path_factory.mktemp("sim") / "state", seed="small", delays=0.2) as handle:
        yield handle


@pytest.fixture
def password_file(sim, tmp_path):
    path = tmp_path / "password"
    path.write_text(sim.password + "\n")
    return path


@pytest.fixture
def manager(sim, db):
    return Manager.objects.create(name="sim", url=sim.url, username=sim.username, password=sim.password,
                                  ca_certificate=sim.ca_file.read_text())


def test_add_test_and_sync_from_the_command_line(sim, password_file, capsys, db):
    call_command("add_manager", "sim", "--url", sim.url, "--username", sim.username,
                 "--password-file", str(password_file), "--ca-file", str(sim.ca_file))
    assert "Connected to" in capsys.readouterr().out
    call_command("test_manager", "sim")
    assert "connected to" in capsys.readouterr().out
    call_command("sync_inventory", "sim")
    manager = Manager.objects.get(name="sim")
    assert manager.state == ManagerState.CONNECTED and manager.last_sync and manager.product_version
    vm = VM.objects.get(manager=manager, name="small-vm1")
    assert vm.cluster.name and vm.memory > 0 and vm.status
    assert Disk.objects.filter(vm=vm, removed=False).exists()


def test_list_vms_json_has_exactly_the_promised_keys(manager, capsys):
    sync_manager_task(manager.pk)
    call_command("list_vms", "--json")
    vms = json.loads(capsys.readouterr().out)
    assert {v["name"] for v in vms} >= {"small-vm1", "small-vm2"}
    for vm in vms:
        assert set(vm) == {"id", "name", "status", "cluster", "memory", "cpus", "tags", "disks"}
        assert isinstance(vm["memory"], int) and isinstance(vm["tags"], list)
        for disk in vm["disks"]:
            assert set(disk) == {"id", "name", "format", "provisioned_size", "storage_domain"}
            assert disk["format"] in ("raw", "cow")
    vm1 = next(v for v in vms if v["name"] == "small-vm1")
    assert vm1["id"] == VM.objects.get(name="small-vm1").engine_id and vm1["disks"]


def test_a_resync_sees_vms_added_and_removed_in_the_engine(sim, manager):
    sync_manager_task(manager.pk)
    connection = sim.connection()
    try:
        vms = connection.system_service().vms_service()
        cluster_id = VM.objects.get(name="small-vm1").cluster.engine_id
        added = vms.add(types.Vm(name="added-later", cluster=types.Cluster(id=cluster_id),
                                 template=types.Template(name="Blank")))
        sync_manager_task(manager.pk)
        row = VM.objects.get(manager=manager, engine_id=added.id)
        assert row.name == "added-later" and not row.removed
        vms.vm_service(added.id).remove()
        sync_manager_task(manager.pk)
    finally:
        connection.close()
    row.refresh_from_db()
    assert row.removed and row.removed_at is not None
    assert VM.objects.filter(manager=manager, name="small-vm1", removed=False).exists()


@pytest.mark.parametrize(("change", "kind", "words"), [
    ("password", "AuthenticationFailed", "Wrong user name or password"),
    ("ca", "CertificateNotTrusted", "Certificate not trusted"),
    ("url", "EngineUnreachable", "Engine unreachable"),
])
def test_each_failure_has_its_own_message_on_the_page_and_from_the_command(
        sim, manager, client_as, change, kind, words):
    data = {"name": "sim", "url": sim.url, "username": sim.username, "password": sim.password,
            "ca_certificate": sim.ca_file.read_text()}
    if change == "password":
        data["password"] = "wrong-password"
    elif change == "ca":
        data["ca_certificate"] = other_ca_pem()
    else:
        data["url"] = f"https://127.0.0.1:{free_port()}/ovirt-engine/api"
    response = client_as("Administrator").post(reverse("inventory:manager_test"), data)
    body = response.content.decode()
    assert f'data-outcome="{kind}"' in body and words in body
    assert data["password"] not in body

    Manager.objects.filter(pk=manager.pk).update(url=data["url"], ca_certificate=data["ca_certificate"])
    stored = Manager.objects.get(pk=manager.pk)
    stored.password = data["password"]
    stored.save()
    with pytest.raises(CommandError) as failure:
        call_command("test_manager", "sim")
    expected = {"password": "password", "ca": "CA certificate", "url": "can't be reached"}[change]
    assert expected in str(failure.value)


def test_the_page_test_shows_product_and_version_without_saving(sim, client_as, db):
    data = {"name": "new-one", "url": sim.url, "username": sim.username, "password": sim.password,
            "ca_certificate": sim.ca_file.read_text()}
    body = client_as("Administrator").post(reverse("inventory:manager_test"), data).content.decode()
    assert 'data-outcome="connected"' in body and "version" in body
    assert not Manager.objects.filter(name="new-one").exists()


def test_an_edit_test_with_an_empty_password_uses_the_stored_one(sim, manager, client_as):
    data = {"name": "sim", "url": sim.url, "username": sim.username, "password": "",
            "ca_certificate": sim.ca_file.read_text()}
    url = reverse("inventory:manager_test_existing", args=[manager.pk])
    assert 'data-outcome="connected"' in client_as("Administrator").post(url, data).content.decode()


def test_a_failed_sync_is_recorded_and_the_password_never_logged(sim, manager, caplog):
    caplog.set_level(logging.DEBUG)
    sync_manager_task(manager.pk)
    Manager.objects.filter(pk=manager.pk).update(url=f"https://127.0.0.1:{free_port()}/ovirt-engine/api")
    sync_manager_task(manager.pk)
    manager.refresh_from_db()
    assert manager.state == ManagerState.ERROR and "can't be reached" in manager.last_error
    assert sim.password not in caplog.text
    assert sim.password not in manager.last_error
