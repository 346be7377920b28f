"""Upgrading with existing data: links get their manager, and VMs restored in place before links
were recorded get theirs from the restore sessions' records."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [("jobs", "0004_restorepoint_vm_engine_id_index")]
AFTER = [("jobs", "0006_replaced_vm_backfill")]

pytestmark = pytest.mark.django_db(transaction=True)


def migrate(targets):
    """Migrate the jobs app to ``targets``; the models as they were there (the other apps' now)."""
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    others = [node for node in executor.loader.graph.leaf_nodes() if node[0] != "jobs"]
    return executor.loader.project_state(others + targets).apps


@pytest.fixture
def old():
    """The models before links were per manager; every migration applied again afterwards."""
    yield Old(migrate(BEFORE))
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())


class Old:
    """Rows as an installation before the upgrade has them."""

    def __init__(self, apps):
        self.apps = apps
        model = apps.get_model
        self.repository = model("repositories", "Repository").objects.create(name="repo", path="/srv/repo")
        self.engine1 = model("inventory", "Manager").objects.create(name="engine1", url="https://engine1/api")

    def vm(self, engine_id, removed=True, manager=None):
        return self.apps.get_model("inventory", "VM").objects.create(
            manager=manager or self.engine1, engine_id=engine_id, name="web1", removed=removed)

    def point(self, vm_engine_id, vm=None):
        return self.apps.get_model("jobs", "RestorePoint").objects.create(
            vm=vm, vm_engine_id=vm_engine_id, vm_name="web1", repository=self.repository,
            manifest_id=f"rp-{vm_engine_id}-{vm.pk if vm else 0}")

    def restore(self, point, created, state="success", replace=True, kept=True, manager=None):
        options = {"restore": {"point": point.pk, "kind": "vm", "replace": replace, "manager": manager},
                   "created": {"vms": created, "disks": [], "transfers": [], "kept": kept}}
        return self.apps.get_model("jobs", "Session").objects.create(
            kind="restore", name="Restore of web1", state=state, options=options)


def links(apps) -> set:
    return set(apps.get_model("jobs", "ReplacedVm").objects.values_list(
        "manager__name", "old_engine_id", "engine_id", "session_id"))


def test_past_in_place_restores_are_linked_in_session_order_through_the_chain(old):
    a = old.vm("vm-a")
    of_a = old.point("vm-a", a)
    first = old.restore(of_a, ["vm-b"])                      # web1: vm-a -> vm-b
    second = old.restore(old.point("vm-b", old.vm("vm-b")), ["vm-c"])  # then vm-b -> vm-c
    again = old.restore(of_a, ["vm-d"])  # from the oldest restore point: replaced web1 as it was then
    old.restore(of_a, ["vm-x"], replace=False)               # beside the original: nothing replaced
    old.restore(of_a, ["vm-a"])                              # the original was gone: back as itself
    old.restore(of_a, ["vm-y"], state="failed")              # the removal may never have come
    old.vm("vm-c")  # vm-c, vm-d: what the inventory saw since (the failed restore's original is still there)
    old.vm("vm-d", removed=False)
    # The second restore ran on a version that recorded its link already (without a manager).
    old.apps.get_model("jobs", "ReplacedVm").objects.create(old_engine_id="vm-b", engine_id="vm-c",
                                                            vm_name="web1", session=second)

    apps = migrate(AFTER)

    assert links(apps) == {("engine1", "vm-a", "vm-d", first.pk), ("engine1", "vm-b", "vm-d", second.pk),
                           ("engine1", "vm-c", "vm-d", again.pk)}


def test_links_recorded_before_get_the_manager_of_their_restore(old):
    engine2 = old.apps.get_model("inventory", "Manager").objects.create(name="engine2", url="https://engine2/api")
    restore = old.restore(old.point("vm-a", old.vm("vm-a", manager=engine2)), ["vm-b"])
    into_removed_manager = old.restore(old.point("vm-c", old.vm("vm-c")), ["vm-e"], manager=999)
    ReplacedVm = old.apps.get_model("jobs", "ReplacedVm")
    ReplacedVm.objects.create(old_engine_id="vm-a", engine_id="vm-b", vm_name="web1", session=restore)
    ReplacedVm.objects.create(old_engine_id="vm-c", engine_id="vm-e", vm_name="web1", session=into_removed_manager)
    old.vm("vm-f")  # its restore session was deleted: only engine1's inventory had the VM
    ReplacedVm.objects.create(old_engine_id="vm-f", engine_id="vm-g", vm_name="web1")

    apps = migrate(AFTER)

    assert links(apps) == {("engine2", "vm-a", "vm-b", restore.pk), (None, "vm-c", "vm-e", into_removed_manager.pk),
                           ("engine1", "vm-f", "vm-g", None)}


def test_going_back_before_per_manager_links_keeps_one_link_per_old_id():
    new = migrate(AFTER)
    Manager = new.get_model("inventory", "Manager")
    ReplacedVm = new.get_model("jobs", "ReplacedVm")
    site_a = Manager.objects.create(name="site-a", url="https://a/api")
    site_b = Manager.objects.create(name="site-b", url="https://b/api")
    # One VM id on two engines (oVirt DR), restored in place on both.
    ReplacedVm.objects.create(manager=site_a, old_engine_id="vm-1", engine_id="vm-2", vm_name="web1")
    ReplacedVm.objects.create(manager=site_b, old_engine_id="vm-1", engine_id="vm-3", vm_name="web1")
    try:
        old = migrate(BEFORE)  # old_engine_id unique again: would fail on the two links
        assert list(old.get_model("jobs", "ReplacedVm").objects.values_list("engine_id", flat=True)) == ["vm-3"]
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())
