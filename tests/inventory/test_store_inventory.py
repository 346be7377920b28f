"""Storing an inventory: keyed by engine id, idempotent, vanished rows marked removed, few queries."""

import dataclasses

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from inventory.models import VM, Cluster, Disk, Manager, StorageDomain
from inventory.sync import store_inventory
from tests.inventory.factories import inventory


@pytest.fixture
def manager(db):
    return Manager.objects.create(name="m1", url="https://engine/ovirt-engine/api", password="pw")


def test_it_stores_everything_linked_by_engine_ids(manager):
    store_inventory(manager, inventory(3))
    vm = VM.objects.get(engine_id="id-vm-1")
    assert vm.cluster.engine_id == "cl-1" and vm.cluster.data_center.name == "Default"
    assert vm.host.name == "host1" and vm.tags == ["gold"] and vm.memory == 2 * 2**30
    disk = Disk.objects.get(engine_id="disk-vm-1")
    assert disk.vm == vm and disk.interface == "virtio_scsi" and disk.bootable
    assert disk.storage_domain.name == "data1" and disk.backup_incremental
    assert StorageDomain.objects.get().free == 500 * 2**30


def test_a_second_identical_sync_changes_nothing(manager):
    store_inventory(manager, inventory(3))
    before = list(VM.objects.values_list("pk", "synced_at"))
    result = store_inventory(manager, inventory(3))
    assert sum(result.created.values()) == sum(result.updated.values()) == sum(result.removed.values()) == 0
    assert list(VM.objects.values_list("pk", "synced_at")) == before


def test_vanished_vms_and_disks_are_marked_removed_not_deleted_and_come_back(manager):
    store_inventory(manager, inventory(3))
    smaller = inventory(3)
    smaller = dataclasses.replace(smaller, vms=smaller.vms[:2], disks=smaller.disks[:2])
    store_inventory(manager, smaller)
    gone = VM.objects.get(engine_id="id-vm-2")
    assert gone.removed and gone.removed_at is not None
    assert Disk.objects.get(engine_id="disk-vm-2").removed
    assert VM.objects.filter(removed=False).count() == 2
    store_inventory(manager, inventory(3))
    back = VM.objects.get(engine_id="id-vm-2")
    assert not back.removed and back.pk == gone.pk


def test_changes_are_written(manager):
    store_inventory(manager, inventory(2))
    changed = inventory(2)
    vm = dataclasses.replace(changed.vms[0], name="renamed", status="up", tags=("silver",))
    store_inventory(manager, dataclasses.replace(changed, vms=[vm, changed.vms[1]]))
    row = VM.objects.get(engine_id=vm.id)
    assert (row.name, row.status, row.tags) == ("renamed", "up", ["silver"])


def test_two_managers_keep_their_own_rows_with_the_same_engine_ids(manager):
    other = Manager.objects.create(name="m2", url="https://other/ovirt-engine/api", password="pw")
    store_inventory(manager, inventory(2))
    store_inventory(other, inventory(2))
    assert Cluster.objects.count() == 2 and VM.objects.count() == 4
    assert {vm.cluster.manager_id for vm in VM.objects.filter(manager=other)} == {other.pk}


def test_it_writes_in_bulk_not_row_by_row(manager):
    store_inventory(manager, inventory(10, prefix="a"))
    with CaptureQueriesContext(connection) as queries:
        # 400 new VMs and disks, 10 vanished ones.
        store_inventory(manager, inventory(400, prefix="b"))
    assert VM.objects.filter(removed=False).count() == 400
    # SQLite caps parameters per INSERT, so batches differ by database; never one per row.
    assert len(queries.captured_queries) < 40


@pytest.mark.django_db(transaction=True)
def test_two_syncs_of_one_manager_at_once_both_succeed(transactional_db):
    if connection.vendor != "postgresql":
        pytest.skip("row locks need PostgreSQL; SQLite serialises writers by itself")
    import threading

    manager = Manager.objects.create(name="m1", url="https://engine/ovirt-engine/api", password="pw")
    errors = []

    def sync():
        try:
            store_inventory(manager, inventory(200))
        except Exception as exc:  # collected for the assertion below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=sync) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert VM.objects.filter(manager=manager).count() == 200


def test_an_older_read_stored_after_a_newer_one_is_dropped(manager):
    # The schedule's sync read the engine, a VM was created, "Sync now" read and stored;
    # then the schedule's older read arrives: it must not mark the new VM removed.
    from datetime import timedelta

    from django.utils import timezone

    now = timezone.now()
    store_inventory(manager, inventory(3), read_at=now)
    older = inventory(3)
    older = dataclasses.replace(older, vms=older.vms[:2], disks=older.disks[:2])
    result = store_inventory(manager, older, read_at=now - timedelta(seconds=5))
    assert result.stale and "dropped" in result.summary()
    assert not VM.objects.get(engine_id="id-vm-2").removed


def test_the_forms_offer_exactly_the_storage_domains_a_restore_accepts(manager):
    from unittest import mock

    from inventory.queries import data_domains
    from plugin import placement

    types = ["data", "", "iso", "export", "image", "volume", "managed_block_storage"]
    domains = [dataclasses.replace(inventory(0).storage_domains[0], id=f"sd-{kind or 'none'}",
                                   name=f"sd-{kind or 'none'}", type=kind) for kind in types]
    store_inventory(manager, dataclasses.replace(inventory(0), storage_domains=domains))

    with mock.patch("plugin.engine.list_storage_domains", autospec=True, return_value=domains):
        accepted = {sd.name for sd in placement.data_domains(object())}
    offered = set(data_domains().values_list("name", flat=True))
    assert offered == accepted == {"sd-data", "sd-none"}
