"""restore_vm and restore_disk: what they refuse, with what to do, before anything is queued."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from inventory.models import VM, Manager
from jobs.models import RestorePoint, Session
from repositories.models import Repository

DISK = {"id": "d-1", "name": "web1_os", "size": 2**30, "format": "cow"}


@pytest.fixture
def point(db):
    manager = Manager.objects.create(name="engine1", url="https://engine1/ovirt-engine/api")
    vm = VM.objects.create(manager=manager, engine_id="vm-1", name="web1")
    repository = Repository.objects.create(name="repo", path="/srv/repo", datamover_url="http://127.0.0.1:9")
    return RestorePoint.objects.create(vm=vm, vm_engine_id="vm-1", vm_name="web1", repository=repository,
                                       manifest_id="rp-1", disks=[DISK], size=DISK["size"])


def run(*args) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_restore_vm_queues_a_restore_session_with_the_options_given(point):
    output = run("restore_vm", str(point.pk), "--name", "web1-copy", "--cluster", "Production",
                 "--storage-domain", "data2", "--power-on")

    session = Session.objects.get(kind="restore")
    assert f"Restore session {session.pk} queued" in output
    assert session.options["restore"] == {**session.options["restore"], "kind": "vm", "name": "web1-copy",
                                          "cluster": "Production", "storage_domain": "data2",
                                          "power_on": True, "replace": False, "new_macs": True}


def test_restore_vm_maps_networks_to_profiles_or_leaves_them_unplugged(point):
    run("restore_vm", str(point.pk), "--name", "web1-dr", "--network", "ovirtmgmt=backend",
        "--network", "storage=")

    options = Session.objects.get(kind="restore").options["restore"]
    assert options["networks"] == {"ovirtmgmt": "backend", "storage": ""}


def test_restore_disk_takes_the_disk_by_name_and_records_its_id(point):
    run("restore_disk", str(point.pk), "web1_os", "--vm", "web2")

    options = Session.objects.get(kind="restore").options["restore"]
    assert options["kind"] == "disks" and options["disks"] == ["d-1"] and options["vm"] == "web2"


def test_restore_disk_puts_a_disk_for_a_vm_on_the_storage_domain_given(point):
    # A VM of another data center than the original disk's takes it only from a domain there.
    run("restore_disk", str(point.pk), "web1_os", "--vm", "remote-web", "--storage-domain", "remote1")

    options = Session.objects.get(kind="restore").options["restore"]
    assert options["vm"] == "remote-web" and options["storage_domain"] == "remote1"


@pytest.mark.parametrize("args, message", [
    (["restore_vm", "nope"], "not a restore point id"),
    (["restore_vm", "999"], "no restore point 999"),
    (["restore_vm", "{pk}", "--replace", "--name", "other"], "keeps its name"),
    (["restore_vm", "{pk}", "--network", "backend"], "write SOURCE=PROFILE"),
    (["restore_vm", "{pk}", "--network", "a=b", "--network", "a=c"], "mapped twice"),
    (["restore_disk", "{pk}", "nope"], "has no disk 'nope'"),
])
def test_bad_input_is_refused_with_what_to_do_and_nothing_is_queued(point, args, message):
    with pytest.raises(CommandError, match=message):
        run(*[a.format(pk=point.pk) for a in args])

    assert not Session.objects.exists()


def test_a_corrupted_restore_point_is_refused(point):
    RestorePoint.objects.filter(pk=point.pk).update(state="corrupted")

    with pytest.raises(CommandError, match="corrupted"):
        run("restore_vm", str(point.pk))
