"""Sync a manager's inventory: read everything through the facade, write it in bulk.

One list call per collection to the engine; per model one SELECT of the
manager's rows, then bulk INSERTs for new objects, bulk UPDATEs for changed
ones only, and one UPDATE marking vanished ones removed. Running it twice
changes nothing the second time.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from django.db import models, transaction
from django.utils import timezone

from inventory.choices import ManagerState
from inventory.models import VM, Cluster, DataCenter, Disk, Host, Manager, Network, StorageDomain
from inventory.signals import inventory_stored
from plugin import engine as ovirt
from plugin.errors import EngineError

log = logging.getLogger(__name__)

BATCH = 500


@dataclass
class SyncResult:
    """What a sync did, per model: created, updated and removed counts."""

    created: dict[str, int] = field(default_factory=dict)
    updated: dict[str, int] = field(default_factory=dict)
    removed: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    stale: bool = False  # a newer read was stored meanwhile: this one was dropped

    def summary(self) -> str:
        if self.stale:
            return "dropped: a sync that began later had stored its read already"
        parts = []
        for name in self.created:
            parts.append(f"{name}: +{self.created[name]} ~{self.updated[name]} -{self.removed[name]}")
        return "; ".join(parts)


def sync_manager(manager: Manager, *, timeout: float | None = None) -> SyncResult:
    """Read the manager's inventory from its engine and store it; record state and errors.

    Raises EngineError (after recording it on the manager) when the engine fails.
    """
    from django.conf import settings

    started = time.monotonic()
    Manager.objects.filter(pk=manager.pk).update(state=ManagerState.SYNCING)
    try:
        read_at = timezone.now()
        with ovirt.connect(manager.credentials(), timeout=timeout or settings.VBR_ENGINE_TIMEOUT) as conn:
            info = ovirt.api_info(conn)
            inventory = ovirt.read_inventory(conn)
        result = store_inventory(manager, inventory, read_at=read_at)
    except EngineError as exc:
        Manager.objects.filter(pk=manager.pk).update(
            state=ManagerState.ERROR, last_error=str(exc), sync_requested_at=None)
        log.warning("Sync of manager %s failed: %s", manager.name, exc)
        raise
    except BaseException:
        Manager.objects.filter(pk=manager.pk).update(
            state=ManagerState.ERROR, last_error="The sync failed unexpectedly; see the runner's log.",
            sync_requested_at=None)
        raise
    result.seconds = time.monotonic() - started
    Manager.objects.filter(pk=manager.pk).update(
        state=ManagerState.CONNECTED, last_error="", last_sync=timezone.now(),
        last_sync_seconds=result.seconds, sync_requested_at=None,
        product_name=info.product_name, product_version=info.version)
    log.info("Synced manager %s in %.1f s: %s", manager.name, result.seconds, result.summary())
    return result


def store_inventory(manager: Manager, inventory: ovirt.Inventory, *, read_at=None) -> SyncResult:
    """Write an inventory read from the engine into the database, in one transaction.

    ``read_at`` is when the read began: a read older than the one stored last is
    dropped (``result.stale``), so two syncs that overlap can't let the older
    read mark a VM created in between removed.
    """
    result = SyncResult()
    now = timezone.now()
    read_at = read_at or now
    with transaction.atomic():
        # Two syncs of one manager (the schedule and "Sync now") must not both
        # insert the same new rows: the second waits here and then only updates.
        # A no-key lock: rows that merely reference the manager (disk tasks, VMs
        # of a restore) are still inserted meanwhile, a big inventory's store
        # doesn't hold every session of that manager back.
        locked = (Manager.objects.select_for_update(no_key=True).filter(pk=manager.pk)
                  .only("inventory_read_at").first())
        if locked is not None and locked.inventory_read_at and locked.inventory_read_at > read_at:
            result.stale = True
            return result
        Manager.objects.filter(pk=manager.pk).update(inventory_read_at=read_at)
        dcs = _sync(DataCenter, manager, {
            dc.id: {"name": dc.name, "status": dc.status, "description": dc.description}
            for dc in inventory.data_centers}, now, result)
        clusters = _sync(Cluster, manager, {
            c.id: {"name": c.name, "data_center_id": _pk(dcs, c.data_center_id),
                   "cpu_architecture": c.cpu_architecture, "description": c.description}
            for c in inventory.clusters}, now, result)
        hosts = _sync(Host, manager, {
            h.id: {"name": h.name, "cluster_id": _pk(clusters, h.cluster_id), "address": h.address,
                   "status": h.status}
            for h in inventory.hosts}, now, result)
        domains = _sync(StorageDomain, manager, {
            sd.id: {"name": sd.name, "type": sd.type, "storage_type": sd.storage_type,
                    "status": sd.status, "free": sd.available, "used": sd.used,
                    "data_center_id": _pk(dcs, sd.data_center_ids[0] if sd.data_center_ids else None)}
            for sd in inventory.storage_domains}, now, result)
        _sync(Network, manager, {
            n.id: {"name": n.name, "data_center_id": _pk(dcs, n.data_center_id), "vlan_id": n.vlan_id,
                   "description": n.description}
            for n in inventory.networks}, now, result)
        vms = _sync(VM, manager, {
            v.id: {"name": v.name, "status": v.status, "description": v.description,
                   "os_type": v.os_type, "memory": v.memory, "cpus": v.cpus, "tags": list(v.tags),
                   "cluster_id": _pk(clusters, v.cluster_id), "host_id": _pk(hosts, v.host_id)}
            for v in inventory.vms}, now, result)
        _sync(Disk, manager, _disk_values(inventory, vms, domains), now, result)
    inventory_stored.send(sender=Manager, manager=manager, result=result)
    return result


def _disk_values(inventory: ovirt.Inventory, vms: dict, domains: dict) -> dict[str, dict]:
    # Interface, bootable flag and owning VM live on the VM's attachment, not the disk.
    attached = {}
    for vm in inventory.vms:
        for attachment in vm.disk_attachments:
            attached[attachment.disk_id] = (vm.id, attachment)
    values = {}
    for d in inventory.disks:
        vm_id, attachment = attached.get(d.id, (None, None))
        values[d.id] = {
            "name": d.name, "format": d.format, "provisioned_size": d.provisioned_size,
            "actual_size": d.actual_size, "storage_domain_id": _pk(domains, d.storage_domain_id),
            "backup_incremental": d.backup_incremental, "sparse": d.sparse, "status": d.status,
            "interface": attachment.interface if attachment else "",
            "bootable": attachment.bootable if attachment else False,
            "vm_id": _pk(vms, vm_id),
        }
    return values


def _pk(rows: dict[str, models.Model], engine_id: str | None) -> int | None:
    row = rows.get(engine_id) if engine_id else None
    return row.pk if row is not None else None


def _sync(model: type[models.Model], manager: Manager, records: dict[str, dict], now,
          result: SyncResult) -> dict[str, models.Model]:
    """Make the manager's rows of ``model`` match ``records`` (engine id → field values).

    Returns every row of the manager by engine id, with primary keys set.
    """
    rows = {row.engine_id: row for row in model.objects.filter(manager=manager)}
    to_create, to_update, changed_fields = [], [], set()
    for engine_id, values in records.items():
        row = rows.get(engine_id)
        if row is None:
            row = model(manager=manager, engine_id=engine_id, synced_at=now, **values)
            to_create.append(row)
            rows[engine_id] = row
            continue
        changed = [name for name, value in values.items() if getattr(row, name) != value]
        if row.removed:
            row.removed, row.removed_at = False, None
            changed += ["removed", "removed_at"]
        if changed:
            for name in changed:
                if name in values:
                    setattr(row, name, values[name])
            row.synced_at = now
            changed_fields.update(changed)
            changed_fields.add("synced_at")
            to_update.append(row)
    model.objects.bulk_create(to_create, batch_size=BATCH)
    if to_update:
        model.objects.bulk_update(to_update, sorted(changed_fields), batch_size=BATCH)
    gone = [row.pk for engine_id, row in rows.items() if engine_id not in records and not row.removed]
    if gone:
        model.objects.filter(pk__in=gone).update(removed=True, removed_at=now)
    if any(row.pk is None for row in to_create):
        # Databases that can't return ids from a bulk INSERT: read them back.
        ids = dict(model.objects.filter(manager=manager).values_list("engine_id", "pk"))
        for row in to_create:
            row.pk = ids[row.engine_id]
    name = model._meta.verbose_name_plural
    result.created[name], result.updated[name], result.removed[name] = len(to_create), len(to_update), len(gone)
    return rows
