"""Snapshots and disk snapshots.

A snapshot freezes each chosen disk's active volume and puts a new cow overlay on top (as oVirt
does); it records which volume it froze, and that volume is the disk snapshot's id. Deleting a
snapshot merges the volume above the frozen one down into it (a commit) and drops the upper one.
"""

from simulator import faults
from simulator.engine import Engine, now
from simulator.errors import bad_request, conflict, not_found
from simulator.handlers.common import links, list_answer
from simulator.routing import Request, Router, created, ok, removed
from simulator.store import new_id
from simulator.xmlio import Many, find_id, find_text, href, ref

RETRY = 0.3


def render_snapshot(vm: dict, snapshot: dict) -> dict:
    """A snapshot as `<snapshot>`."""
    return {
        "@href": href(f"vms/{vm['id']}/snapshots/{snapshot['id']}"), "@id": snapshot["id"],
        "description": snapshot["description"],
        "link": links(f"vms/{vm['id']}/snapshots/{snapshot['id']}", "disks"),
        "date": snapshot["date"], "persist_memorystate": False,
        "snapshot_status": snapshot["status"], "snapshot_type": snapshot["type"],
        "vm": ref("vms", vm["id"]),
    }


def active_snapshot(vm: dict) -> dict:
    """The 'Active VM' snapshot every oVirt VM lists."""
    vm.setdefault("active_snapshot", new_id())
    return {"id": vm["active_snapshot"], "description": "Active VM", "status": "ok",
            "type": "active", "date": vm["creation_time"], "disks": []}


def render_disk_snapshot(engine: Engine, disk: dict, volume_id: str, snapshot_id: str) -> dict:
    """A disk snapshot (one frozen volume) as `<disk_snapshot>`."""
    return {
        "@href": href(f"storagedomains/{disk['storage_domain']}/disksnapshots/{volume_id}"),
        "@id": volume_id, "actual_size": disk.get("actual_size", 0), "alias": disk["alias"],
        "content_type": "data", "format": _volume(disk, volume_id)["format"],
        "image_id": volume_id, "provisioned_size": disk["provisioned_size"],
        "sparse": True, "status": disk["status"], "storage_type": "image",
        "disk": ref("disks", disk["id"]), "snapshot": {"@id": snapshot_id},
        "storage_domains": Many("storage_domain", [ref("storagedomains",
                                                       disk["storage_domain"])]),
    }


def _volume(disk: dict, volume_id: str) -> dict:
    for volume in disk["volumes"]:
        if volume["id"] == volume_id:
            return volume
    raise not_found("disk snapshot")


def find_disk_snapshot(engine: Engine, volume_id: str) -> tuple[dict, dict]:
    """The (disk, snapshot) of a disk snapshot id; 404 when none has it."""
    for snapshot in engine.store["snapshots"].values():
        for entry in snapshot["disks"]:
            if entry["volume"] == volume_id and entry["disk"] in engine.store["disks"]:
                return engine.store["disks"][entry["disk"]], snapshot
    raise not_found("disk snapshot")


def register(router: Router, engine: Engine) -> None:
    """Routes of snapshots and disk snapshots."""
    router.add("GET", "vms/{vm}/snapshots", lambda r: list_snapshots(engine, r))
    router.add("POST", "vms/{vm}/snapshots", lambda r: add_snapshot(engine, r))
    router.add("GET", "vms/{vm}/snapshots/{snapshot}", lambda r: get_snapshot(engine, r))
    router.add("DELETE", "vms/{vm}/snapshots/{snapshot}", lambda r: remove_snapshot(engine, r))
    router.add("GET", "vms/{vm}/snapshots/{snapshot}/disks", lambda r: snapshot_disks(engine, r))
    router.add("GET", "storagedomains/{sd}/disksnapshots", lambda r: list_disk_snapshots(engine, r))
    router.add("GET", "storagedomains/{sd}/disksnapshots/{volume}",
               lambda r: get_disk_snapshot(engine, r))
    router.add("GET", "disks/{disk}/disksnapshots", lambda r: list_disk_snapshots(engine, r))


def _vm_snapshots(engine: Engine, vm: dict) -> list[dict]:
    ours = [s for s in engine.store["snapshots"].values() if s["vm"] == vm["id"]]
    return [*sorted(ours, key=lambda s: s["date"]), active_snapshot(vm)]


def list_snapshots(engine: Engine, request: Request):
    """GET /vms/{id}/snapshots, the Active VM one last."""
    with engine.lock:
        vm = engine.get("vms", request.params["vm"], "VM")
        return list_answer(request, "snapshots", "snapshot", _vm_snapshots(engine, vm),
                           lambda s: render_snapshot(vm, s))


def _snapshot(engine: Engine, vm: dict, snapshot_id: str) -> dict:
    for snapshot in _vm_snapshots(engine, vm):
        if snapshot["id"] == snapshot_id:
            return snapshot
    raise not_found("snapshot")


def get_snapshot(engine: Engine, request: Request):
    """GET /vms/{id}/snapshots/{snapshot}."""
    with engine.lock:
        vm = engine.get("vms", request.params["vm"], "VM")
        return ok("snapshot", render_snapshot(vm, _snapshot(engine, vm, request.params["snapshot"])))


def _chosen_disks(engine: Engine, vm: dict, body) -> list[dict]:
    attached = [a["disk"] for a in vm["disk_attachments"]]
    elements = body.findall("disk_attachments/disk_attachment")
    wanted = [find_id(e, "disk") or e.get("id") for e in elements] if elements else attached
    disks = []
    for disk_id in wanted:
        if disk_id not in attached:
            raise bad_request(f"Disk {disk_id} is not attached to VM {vm['name']}.",
                              reason="Invalid disk")
        disks.append(engine.store["disks"][disk_id])
    return disks


def add_snapshot(engine: Engine, request: Request):
    """POST /vms/{id}/snapshots: locked until the overlays exist, then ok."""
    body = request.xml()
    with engine.lock:
        vm = engine.get("vms", request.params["vm"], "VM")
        description = find_text(body, "description")
        if not description:
            raise bad_request("Snapshot [description] required for add")
        if any(s["status"] == "locked" for s in _vm_snapshots(engine, vm)):
            raise conflict(f"Cannot create Snapshot. Snapshot is currently being created for VM "
                           f"{vm['name']}.")
        disks = _chosen_disks(engine, vm, body)
        _refuse_during_backup(engine, vm, "create")
        for disk in disks:
            if disk["status"] != "ok":
                raise conflict(f"Cannot create Snapshot. Disk {disk['alias']} status is "
                               f"{disk['status'].capitalize()}. Please try again later.")
        snapshot = {"id": new_id(), "vm": vm["id"], "description": description,
                    "status": "locked", "type": "regular", "date": now(),
                    "disks": [{"disk": d["id"], "volume": None} for d in disks], "op": "create",
                    "stuck": faults.take(engine, "snapshot-locked") is not None}
        for disk in disks:
            disk["status"] = "locked"
        engine.store["snapshots"][snapshot["id"]] = snapshot
        engine.add_event(f"Snapshot '{description}' creation for VM '{vm['name']}' was "
                         "initiated by admin@internal-authz.", code=45, vm=vm["id"])
        engine.later(_finish_snapshot, engine, snapshot["id"])
        engine.save()
        return created("snapshot", render_snapshot(vm, snapshot))


def _refuse_during_backup(engine: Engine, vm: dict, verb: str) -> None:
    from simulator.handlers.backups import active_backup

    if active_backup(engine, vm["id"]) is not None:
        raise conflict(f"Cannot {verb} Snapshot. VM {vm['name']} is during a backup operation.")


def _finish_snapshot(engine: Engine, snapshot_id: str) -> None:
    snapshot = engine.store["snapshots"].get(snapshot_id)
    if snapshot is None or snapshot["status"] != "locked":
        return
    if snapshot.get("stuck") and faults.active(engine, "snapshot-locked"):
        engine.later(_finish_snapshot, engine, snapshot_id, delay=RETRY)
        return
    for entry in snapshot["disks"]:
        disk = engine.store["disks"].get(entry["disk"])
        if disk is None:
            continue
        engine.materialize(disk)
        frozen = disk["volumes"][-1]
        overlay = engine.new_volume("cow")
        disk["volumes"].append(overlay)
        engine.materialize(disk)
        entry["volume"] = frozen["id"]
        disk["status"] = "ok"
    snapshot["status"] = "ok"
    vm = engine.store["vms"].get(snapshot["vm"], {})
    engine.add_event(f"Snapshot '{snapshot['description']}' creation for VM "
                     f"'{vm.get('name')}' has been completed.", code=68, vm=snapshot["vm"])


def remove_snapshot(engine: Engine, request: Request):
    """DELETE /vms/{id}/snapshots/{snapshot}: locked while merging, then gone (404)."""
    with engine.lock:
        vm = engine.get("vms", request.params["vm"], "VM")
        snapshot = _snapshot(engine, vm, request.params["snapshot"])
        if snapshot["type"] == "active":
            raise conflict("Cannot remove Snapshot. The active snapshot can't be removed.")
        if snapshot["status"] == "locked":
            raise conflict("Cannot remove Snapshot. Snapshot is currently being created or "
                           "removed.")
        _refuse_during_backup(engine, vm, "remove")
        for entry in snapshot["disks"]:
            disk = engine.store["disks"].get(entry["disk"])
            if disk and disk["status"] != "ok":
                raise conflict(f"Cannot remove Snapshot. Disk {disk['alias']} is locked. "
                               "Please try again in a few minutes.")
        snapshot["status"], snapshot["op"] = "locked", "delete"
        for entry in snapshot["disks"]:
            if entry["disk"] in engine.store["disks"]:
                engine.store["disks"][entry["disk"]]["status"] = "locked"
        engine.later(_merge_snapshot, engine, snapshot["id"])
        engine.save()
        return removed()


def _merge_snapshot(engine: Engine, snapshot_id: str) -> None:
    snapshot = engine.store["snapshots"].get(snapshot_id)
    if snapshot is None:
        return
    for entry in snapshot["disks"]:
        disk = engine.store["disks"].get(entry["disk"])
        if disk is None:
            continue
        if entry["volume"] is not None:
            merge_volume(engine, disk, entry["volume"])
        disk["status"] = "ok"
        engine.refresh_actual_size(disk)
    del engine.store["snapshots"][snapshot_id]
    engine.add_event(f"Snapshot '{snapshot['description']}' deletion for VM has been completed.",
                     code=356, vm=snapshot["vm"])


def merge_volume(engine: Engine, disk: dict, volume_id: str) -> None:
    """Commit the volume above volume_id into it; volume_id takes the upper one's place."""
    ids = [v["id"] for v in disk["volumes"]]
    index = ids.index(volume_id)
    base, top = disk["volumes"][index], disk["volumes"][index + 1]
    dataplane = engine.require_dataplane()
    children = [engine.volume_path(disk, v) for v in disk["volumes"][index + 2: index + 3]]
    dataplane.commit_volume(engine.volume_path(disk, top), engine.volume_path(disk, base),
                            children=children)
    dataplane.delete_volume(engine.volume_path(disk, top))
    disk["volumes"].pop(index + 1)
    for other in engine.store["snapshots"].values():
        for entry in other["disks"]:
            if entry["disk"] == disk["id"] and entry["volume"] == top["id"]:
                entry["volume"] = base["id"]


def snapshot_disks(engine: Engine, request: Request):
    """GET /vms/{id}/snapshots/{snapshot}/disks: the disks as the snapshot froze them."""
    from simulator.handlers.disks import render_disk

    with engine.lock:
        vm = engine.get("vms", request.params["vm"], "VM")
        snapshot = _snapshot(engine, vm, request.params["snapshot"])
        items = []
        for entry in snapshot["disks"]:
            disk = engine.store["disks"].get(entry["disk"])
            if disk is not None and entry["volume"]:
                rendered = render_disk(engine, disk)
                rendered["image_id"] = entry["volume"]
                rendered["snapshot"] = ref(f"vms/{vm['id']}/snapshots", snapshot["id"])
                items.append(rendered)
        return ok("disks", Many("disk", items))


def list_disk_snapshots(engine: Engine, request: Request):
    """GET /storagedomains/{sd}/disksnapshots (or /disks/{id}/disksnapshots)."""
    with engine.lock:
        items = []
        for snapshot in engine.store["snapshots"].values():
            for entry in snapshot["disks"]:
                disk = engine.store["disks"].get(entry["disk"])
                if disk is None or not entry["volume"]:
                    continue
                if request.params.get("sd") not in (None, disk["storage_domain"]):
                    continue
                if request.params.get("disk") not in (None, disk["id"]):
                    continue
                items.append(render_disk_snapshot(engine, disk, entry["volume"], snapshot["id"]))
        return ok("disk_snapshots", Many("disk_snapshot", items))


def get_disk_snapshot(engine: Engine, request: Request):
    """GET /storagedomains/{sd}/disksnapshots/{id}."""
    with engine.lock:
        disk, snapshot = find_disk_snapshot(engine, request.params["volume"])
        return ok("disk_snapshot", render_disk_snapshot(engine, disk, request.params["volume"],
                                                        snapshot["id"]))


def recover(engine: Engine) -> None:
    """Finish the snapshot creations and removals a restart interrupted."""
    for snapshot in engine.store["snapshots"].values():
        if snapshot["status"] != "locked":
            continue
        if snapshot.get("op") == "delete":
            engine.later(_merge_snapshot, engine, snapshot["id"])
        else:
            engine.later(_finish_snapshot, engine, snapshot["id"])
