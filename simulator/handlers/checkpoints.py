"""Checkpoints: list, get, delete (the root only, as oVirt), their disks, and breaking one.

A checkpoint is a qemu persistent dirty bitmap named by its id in the qcow2 volumes of the disks
it covers; it tracks every write made after the backup that created it.
"""

from simulator.engine import Engine
from simulator.errors import bad_request, conflict, not_found
from simulator.handlers.common import links, list_answer
from simulator.routing import Request, Router, ok, removed
from simulator.xmlio import Many, href, ref


def render_checkpoint(checkpoint: dict) -> dict:
    """A checkpoint as `<checkpoint>`."""
    base = f"vms/{checkpoint['vm']}/checkpoints/{checkpoint['id']}"
    return {
        "@href": href(base), "@id": checkpoint["id"],
        "link": links(base, "disks"),
        "creation_date": checkpoint["creation_date"],
        "parent_id": checkpoint.get("parent_id"), "state": checkpoint["state"],
        "disks": Many("disk", [ref("disks", d) for d in checkpoint["disks"]]),
        "vm": ref("vms", checkpoint["vm"]),
    }


def register(router: Router, engine: Engine) -> None:
    """Routes of checkpoints."""
    router.add("GET", "vms/{vm}/checkpoints", lambda r: list_checkpoints(engine, r))
    router.add("GET", "vms/{vm}/checkpoints/{checkpoint}", lambda r: get_checkpoint(engine, r))
    router.add("DELETE", "vms/{vm}/checkpoints/{checkpoint}",
               lambda r: remove_checkpoint(engine, r))
    router.add("GET", "vms/{vm}/checkpoints/{checkpoint}/disks",
               lambda r: checkpoint_disks(engine, r))


def vm_checkpoints(engine: Engine, vm_id: str) -> list[dict]:
    """A VM's checkpoints, oldest first."""
    return sorted((c for c in engine.store["checkpoints"].values() if c["vm"] == vm_id),
                  key=lambda c: c["seq"])


def _checkpoint(engine: Engine, request: Request) -> tuple[dict, dict]:
    vm = engine.get("vms", request.params["vm"], "VM")
    checkpoint = engine.store["checkpoints"].get(request.params["checkpoint"])
    if checkpoint is None or checkpoint["vm"] != vm["id"]:
        raise not_found("checkpoint")
    return vm, checkpoint


def list_checkpoints(engine: Engine, request: Request):
    """GET /vms/{id}/checkpoints."""
    with engine.lock:
        vm = engine.get("vms", request.params["vm"], "VM")
        return list_answer(request, "checkpoints", "checkpoint",
                           vm_checkpoints(engine, vm["id"]), render_checkpoint)


def get_checkpoint(engine: Engine, request: Request):
    """GET /vms/{id}/checkpoints/{checkpoint}."""
    with engine.lock:
        return ok("checkpoint", render_checkpoint(_checkpoint(engine, request)[1]))


def checkpoint_disks(engine: Engine, request: Request):
    """GET /vms/{id}/checkpoints/{checkpoint}/disks."""
    from simulator.handlers.disks import render_disk

    with engine.lock:
        _vm, checkpoint = _checkpoint(engine, request)
        return ok("disks", Many("disk", [render_disk(engine, engine.store["disks"][d])
                                         for d in checkpoint["disks"]
                                         if d in engine.store["disks"]]))


def remove_bitmap_everywhere(engine: Engine, disk: dict, name: str) -> None:
    """Remove a checkpoint's bitmap from every cow volume of a disk's chain."""
    for volume in disk["volumes"]:
        if volume["format"] == "cow" and volume.get("created"):
            engine.dataplane.remove_bitmap(engine.volume_path(disk, volume), name)


def record_checkpoint(engine: Engine, backup: dict) -> None:
    """Add the checkpoint a succeeded backup made, child of the VM's latest one."""
    existing = vm_checkpoints(engine, backup["vm"])
    meta = engine.store.meta
    meta["checkpoint_seq"] = meta.get("checkpoint_seq", 0) + 1
    engine.store["checkpoints"][backup["to_checkpoint_id"]] = {
        "id": backup["to_checkpoint_id"], "vm": backup["vm"], "seq": meta["checkpoint_seq"],
        "parent_id": existing[-1]["id"] if existing else None, "state": "created",
        "creation_date": backup["creation_date"], "disks": backup["checkpoint_disks"],
    }


def remove_checkpoint(engine: Engine, request: Request):
    """DELETE /vms/{id}/checkpoints/{checkpoint}: only the root (oldest), as oVirt allows."""
    with engine.lock:
        vm, checkpoint = _checkpoint(engine, request)
        root = vm_checkpoints(engine, vm["id"])[0]
        if checkpoint["id"] != root["id"]:
            raise conflict(f"Cannot remove checkpoint {checkpoint['id']}: only the root "
                           f"checkpoint ({root['id']}) of VM {vm['name']} can be removed.")
        from simulator.handlers.backups import active_backup

        if active_backup(engine, vm["id"]) is not None:
            raise conflict(f"Cannot remove checkpoint. VM {vm['name']} is during a backup "
                           "operation.")
        for disk_id in checkpoint["disks"]:
            disk = engine.store["disks"].get(disk_id)
            if disk is not None:
                remove_bitmap_everywhere(engine, disk, checkpoint["id"])
        del engine.store["checkpoints"][checkpoint["id"]]
        for other in vm_checkpoints(engine, vm["id"]):
            if other.get("parent_id") == checkpoint["id"]:
                other["parent_id"] = None
        engine.save()
        return removed()


def checkpoint_fault(engine: Engine, data: dict) -> dict:
    """Break a checkpoint as a host crash would: invalidate it, or remove its bitmaps."""
    from simulator.admin import find_vm_disk

    vm, _disk = find_vm_disk(engine, data.get("vm") or "", None)
    checkpoint = engine.store["checkpoints"].get(data.get("checkpoint") or "")
    if checkpoint is None or checkpoint["vm"] != vm["id"]:
        raise not_found(f"checkpoint '{data.get('checkpoint')}' of VM '{vm['name']}'")
    action = data.get("action") or "invalidate"
    if action not in ("invalidate", "remove-bitmap"):
        raise bad_request("action must be invalidate or remove-bitmap.")
    for disk_id in checkpoint["disks"]:
        disk = engine.store["disks"].get(disk_id)
        if disk is None:
            continue
        for volume in disk["volumes"]:
            path = engine.volume_path(disk, volume)
            names = {b["name"] for b in engine.require_dataplane().list_bitmaps(path)}
            if checkpoint["id"] in names:
                engine.dataplane.invalidate_bitmap(
                    path, checkpoint["id"],
                    how="inconsistent" if action == "invalidate" else "removed")
    if action == "invalidate":
        checkpoint["state"] = "invalid"
    engine.save()
    return {"checkpoint": checkpoint["id"], "action": action, "state": checkpoint["state"]}
