"""The restore wizard: who may use it, each step, and the restore session it starts."""

import pytest
from django.urls import reverse

from inventory.models import VM, Cluster, Manager, StorageDomain
from jobs.models import ReplacedVm, RestorePoint, Session
from repositories.models import Repository
from vbrsite.roles import ADMINISTRATOR, OPERATOR, RESTORE_OPERATOR

DISK = {"id": "d-1", "name": "web1_os", "size": 8 * 2**30, "format": "cow"}



@pytest.fixture
def point(db):
    manager = Manager.objects.create(name="engine1", url="https://engine1/ovirt-engine/api")
    cluster = Cluster.objects.create(manager=manager, engine_id="cl-1", name="Production")
    StorageDomain.objects.create(manager=manager, engine_id="sd-1", name="data1", type="data")
    vm = VM.objects.create(manager=manager, engine_id="vm-1", name="web1", cluster=cluster)
    # The data mover is not running: pages that need it must say so, not break.
    repository = Repository.objects.create(name="repo", path="/srv/repo",
                                           datamover_url="http://127.0.0.1:9")
    return RestorePoint.objects.create(vm=vm, vm_engine_id="vm-1", vm_name="web1", repository=repository,
                                       manifest_id="rp-1", disks=[DISK], size=DISK["size"])


def step(name: str) -> str:
    return reverse("jobs:restore_step", args=[name])


@pytest.mark.parametrize("role", [ADMINISTRATOR, OPERATOR, RESTORE_OPERATOR])
def test_every_role_may_open_the_wizard_and_sees_vms_with_restore_points(client_as, point, role):
    response = client_as(role).get(reverse("jobs:restore"), follow=True)

    assert response.status_code == 200
    assert b"web1" in response.content and b"Restore points" in response.content


def test_a_user_without_a_role_may_not_restore(client_as, point):
    client = client_as(None)

    assert client.get(reverse("jobs:restore")).status_code == 403
    assert client.get(step("summary")).status_code == 403


def test_a_restore_operator_may_not_change_jobs_repositories_or_managers(client_as, point):
    client = client_as(RESTORE_OPERATOR)

    for url in (reverse("jobs:new", args=["name"]), reverse("repositories:add"),
                reverse("inventory:manager_add")):
        assert client.get(url).status_code == 403, url


def test_a_vm_no_longer_in_the_engine_is_listed_and_marked(client_as, point):
    VM.objects.filter(pk=point.vm_id).update(removed=True)

    response = client_as(RESTORE_OPERATOR).get(step("vm"))

    assert b"no longer" in response.content and b"web1" in response.content


def test_restore_points_from_before_an_in_place_restore_are_the_re_created_vms(client_as, point):
    # Restored in place: the engine re-created web1 as vm-2, and a backup of it followed.
    VM.objects.filter(pk=point.vm_id).update(removed=True)
    web1 = VM.objects.create(manager=point.vm.manager, engine_id="vm-2", name="web1")
    ReplacedVm.record(web1.manager_id, "vm-1", "vm-2", vm_name="web1")
    later = RestorePoint.objects.create(vm=web1, vm_engine_id="vm-2", vm_name="web1", disks=[DISK],
                                        repository=point.repository, manifest_id="rp-2")
    client = client_as(RESTORE_OPERATOR)

    listed = client.get(step("vm")).context["rows"]
    from_vm_page = client.get(reverse("jobs:restore"), {"vm": web1.pk}, follow=True)

    assert [(row["vm_key"], row["points"], row["in_engine"]) for row in listed] == [("vm-2", 2, True)]
    assert from_vm_page.context["points"] == [later, point]


def test_the_wizard_walks_from_vm_to_summary_and_starts_a_restore_session(client_as, point):
    client = client_as(RESTORE_OPERATOR)
    client.get(reverse("jobs:restore"))

    response = client.get(step("vm"), {"choose": "vm-1"})
    assert response.url == step("point")
    response = client.get(step("point"))
    assert b"Full" in response.content and b"8.0\xc2\xa0GB" in response.content
    assert client.get(step("point"), {"choose": point.pk}).url == step("kind")
    assert client.post(step("kind"), {"kind": "original"}).url == step("target")
    assert client.post(step("target"), {"replace": "on", "power_on": "on"}).url == step("summary")
    summary = client.get(step("summary"))
    assert b"in place" in summary.content and b"Start restore" in summary.content

    response = client.post(step("summary"))

    session = Session.objects.get(kind="restore")
    assert response.url == session.get_absolute_url()
    assert session.options["restore"]["replace"] is True
    assert session.options["restore"]["power_on"] is True
    assert session.options["restore"]["point"] == point.pk
    assert session.state == "pending"


def test_the_restore_point_page_link_starts_at_the_kind_of_restore(client_as, point):
    client = client_as(OPERATOR)

    assert client.get(reverse("jobs:restore"), {"point": point.pk}).url == step("kind")
    assert client.get(reverse("jobs:restore"), {"vm": point.vm_id}).url == step("point")


def test_a_step_can_not_be_skipped(client_as, point):
    client = client_as(OPERATOR)
    client.get(reverse("jobs:restore"))

    assert client.get(step("summary")).url == step("vm")


def test_disks_go_floating_or_to_a_chosen_vm(client_as, point):
    client = client_as(ADMINISTRATOR)
    client.get(reverse("jobs:restore"), {"point": point.pk})
    client.post(step("kind"), {"kind": "disks"})

    response = client.post(step("target"), {})
    assert b"disks-error" in response.content

    client.post(step("target"), {"disks": ["d-1"], "vm": str(point.vm_id)})
    client.post(step("summary"))

    options = Session.objects.get(kind="restore").options["restore"]
    assert options["kind"] == "disks" and options["disks"] == ["d-1"] and options["vm"] == "vm-1"


def test_a_new_location_needs_a_name_and_says_when_the_networks_cant_be_read(client_as, point):
    client = client_as(ADMINISTRATOR)
    client.get(reverse("jobs:restore"), {"point": point.pk})
    client.post(step("kind"), {"kind": "new"})

    page = client.get(step("target"))
    assert b"can&#x27;t be read" in page.content or b"can't be read" in page.content
    response = client.post(step("target"), {"name": "", "cluster": Cluster.objects.get().pk})
    assert b"name-error" in response.content

    client.post(step("target"), {"name": "web1-copy", "cluster": Cluster.objects.get().pk,
                                 "new_macs": "on", f"disk_sd_{DISK['id']}": StorageDomain.objects.get().pk,
                                 "disk_format": "raw", "allocation": "preallocated"})
    summary = client.get(step("summary"))
    assert b"Production" in summary.content and b"web1_os on data1" in summary.content
    assert b"raw, preallocated" in summary.content
    client.post(step("summary"))

    options = Session.objects.get(kind="restore").options["restore"]
    assert options["name"] == "web1-copy" and options["cluster"] == "cl-1"
    assert options["disk_storage_domains"] == {"d-1": "sd-1"} and options["new_macs"] is True
    assert options["disk_format"] == "raw" and options["allocation"] == "preallocated"


def remote_data_center(point) -> tuple:
    """Production and data1 (where web1_os is) in data center Default; cluster Remote and remote1 in Remote."""
    from inventory.models import DataCenter, Disk

    manager = point.vm.manager
    default = DataCenter.objects.create(manager=manager, engine_id="dc-1", name="Default")
    remote = DataCenter.objects.create(manager=manager, engine_id="dc-2", name="Remote")
    Cluster.objects.filter(engine_id="cl-1").update(data_center=default)
    StorageDomain.objects.filter(engine_id="sd-1").update(data_center=default)
    Disk.objects.create(manager=manager, engine_id="d-1", name="web1_os",
                        storage_domain=StorageDomain.objects.get(engine_id="sd-1"))
    cluster = Cluster.objects.create(manager=manager, engine_id="cl-2", name="Remote", data_center=remote)
    domain = StorageDomain.objects.create(manager=manager, engine_id="sd-2", name="remote1", type="data",
                                          data_center=remote)
    return cluster, domain


def test_a_new_location_takes_only_storage_domains_of_the_clusters_data_center(client_as, point):
    cluster, remote1 = remote_data_center(point)
    client = client_as(ADMINISTRATOR)
    client.get(reverse("jobs:restore"), {"point": point.pk})
    client.post(step("kind"), {"kind": "new"})
    target = {"name": "web1-remote", "cluster": cluster.pk, "new_macs": "on"}

    # Where the disk was: data1, in Default.
    response = client.post(step("target"), target)
    assert b"disk_sd_d-1-error" in response.content
    assert (b"web1_os was on storage domain data1, which is not attached to data center Remote, where cluster "
            b"Remote is: choose a storage domain of that data center (usable there: remote1)") in response.content
    response = client.post(step("target"), {**target, "storage_domain": StorageDomain.objects.get(name="data1").pk})
    assert b"storage_domain-error" in response.content and b"Storage domain data1 is not attached" in response.content

    assert client.post(step("target"), {**target, "storage_domain": remote1.pk}).url == step("summary")


def test_disks_for_a_vm_go_only_to_a_storage_domain_of_its_data_center(client_as, point):
    cluster, remote1 = remote_data_center(point)
    remote_vm = VM.objects.create(manager=point.vm.manager, engine_id="vm-2", name="remote-web", cluster=cluster)
    client = client_as(ADMINISTRATOR)
    client.get(reverse("jobs:restore"), {"point": point.pk})
    client.post(step("kind"), {"kind": "disks"})
    target = {"disks": ["d-1"], "vm": remote_vm.pk}

    response = client.post(step("target"), target)
    assert b"storage_domain-error" in response.content
    assert b"where VM remote-web (cluster Remote) is" in response.content and b"usable there: remote1" in response.content

    assert client.post(step("target"), {**target, "storage_domain": remote1.pk}).url == step("summary")
    client.post(step("summary"))
    options = Session.objects.get(kind="restore").options["restore"]
    assert options["vm"] == "vm-2" and options["storage_domain"] == "sd-2"


def test_replacing_while_renaming_is_refused_with_what_to_do(client_as, point):
    client = client_as(ADMINISTRATOR)
    client.get(reverse("jobs:restore"), {"point": point.pk})
    client.post(step("kind"), {"kind": "original"})

    response = client.post(step("target"), {"replace": "on", "name": "other"})

    assert b"keeps its name" in response.content


def test_a_restore_session_shows_its_disks_on_the_session_page(client_as, point):
    from jobs.models import TaskSession

    session = Session.objects.create(kind="restore", name="Restore of web1 as web1-copy", state="running")
    TaskSession.objects.create(session=session, vm=point.vm, vm_name="web1", state="running", disks=[{
        "id": "d-1", "name": "web1_os", "size": DISK["size"], "format": "cow", "mode": "restore",
        "new_disk_id": "n-1", "state": "running", "bytes_total": 2**30, "bytes_done": 2**29, "progress": 50,
        "rate": 100e6, "worker": "embedded worker", "error": "", "bytes_read": 0, "bytes_sent": 0,
        "bytes_stored": 0}])
    client = client_as(RESTORE_OPERATOR)

    page = client.get(session.get_absolute_url())
    progress = client.get(reverse("jobs:session_progress", args=[session.pk]))

    assert page.status_code == 200 and progress.status_code == 200
    assert b"web1_os" in progress.content and b"Restore of web1" in page.content


def test_a_restore_point_whose_vm_left_the_inventory_restores_into_the_chosen_clusters_manager(client_as, point):
    RestorePoint.objects.filter(pk=point.pk).update(vm=None)
    client = client_as(ADMINISTRATOR)
    client.get(reverse("jobs:restore"), {"point": point.pk})
    client.post(step("kind"), {"kind": "new"})
    client.post(step("target"), {"name": "web1-back", "cluster": Cluster.objects.get().pk})

    client.post(step("summary"))

    options = Session.objects.get(kind="restore").options["restore"]
    assert options["manager"] == Manager.objects.get().pk and options["cluster"] == "cl-1"


@pytest.mark.parametrize("query", ["?point=abc", "?vm=abc", "?point=1e3"])
def test_a_restore_link_with_an_id_that_isnt_a_number_is_not_found(client_as, point, query):
    assert client_as(RESTORE_OPERATOR).get(reverse("jobs:restore") + query).status_code == 404
