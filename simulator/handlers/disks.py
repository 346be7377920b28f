"""Disks: list, get, add on a storage domain (locked, then ok), remove; disk snapshots."""

import logging

from simulator.engine import Engine
from simulator.errors import bad_request, conflict
from simulator.handlers.common import links, list_answer
from simulator.routing import Request, Router, created, ok, removed
from simulator.store import new_id
from simulator.xmlio import Many, find_bool, find_id, find_int, find_text, href, ref

log = logging.getLogger("simulator")


def render_disk(engine: Engine, disk: dict, backup_mode: str | None = None) -> dict:
    """A disk as `<disk>`."""
    active = disk["volumes"][-1]
    fmt = active["format"]
    return {
        "@href": href(f"disks/{disk['id']}"), "@id": disk["id"],
        "name": disk["alias"], "description": disk.get("description", ""),
        "link": links(f"disks/{disk['id']}", "disksnapshots"),
        "actual_size": disk.get("actual_size", 0), "alias": disk["alias"],
        "backup": disk.get("backup", "none"), "backup_mode": backup_mode,
        "content_type": "data", "format": fmt, "image_id": active["id"],
        "propagate_errors": False, "provisioned_size": disk["provisioned_size"],
        "qcow_version": "qcow2_v3" if fmt == "cow" else None, "shareable": False,
        "sparse": disk.get("sparse", True), "status": disk["status"], "storage_type": "image",
        "total_size": disk.get("actual_size", 0), "wipe_after_delete": False,
        "disk_profile": None,
        "storage_domains": Many("storage_domain", [ref("storagedomains",
                                                       disk["storage_domain"])]),
    }


def disk_fields(disk: dict) -> dict:
    """Searchable fields of a disk."""
    return {"name": disk["alias"], "alias": disk["alias"], "id": disk["id"],
            "status": disk["status"], "format": disk["volumes"][-1]["format"]}


def new_disk(engine: Engine, alias: str, storage_domain: str, size: int, fmt: str, **values):
    """A disk record of one volume, stored in the model (files are created on first use)."""
    disk = {"id": values.pop("id", None) or new_id(), "alias": alias, "description": "",
            "storage_domain": storage_domain, "provisioned_size": size, "sparse": True,
            "status": "ok", "backup": "incremental" if fmt == "cow" else "none",
            "volumes": [{"id": new_id(), "format": fmt, "created": False}], "actual_size": 0}
    disk.update(values)
    engine.store["disks"][disk["id"]] = disk
    return disk


def delete_disk_files(engine: Engine, disk: dict) -> None:
    """Remove a disk's volumes from its storage domain."""
    for volume in reversed(disk["volumes"]):
        path = engine.volume_path(disk, volume)
        if volume.get("created") and engine.dataplane is not None:
            engine.dataplane.delete_volume(path)
        elif path.exists():
            path.unlink()
    try:
        engine.volume_path(disk, disk["volumes"][0]).parent.rmdir()
    except OSError:
        pass


def create_disk(engine: Engine, body, storage_domain_id: str | None = None) -> dict:
    """Validate a `<disk>` and add it locked; it turns ok after the engine's delay."""
    alias = find_text(body, "alias") or find_text(body, "name")
    size = find_int(body, "provisioned_size")
    if size is None:
        raise bad_request("Disk [provisionedSize|size] required for add")
    fmt = find_text(body, "format", "raw")
    if fmt not in ("raw", "cow"):
        raise bad_request(f"Invalid value '{fmt}' for disk format; use raw or cow.",
                          reason="Invalid value")
    sd_id = storage_domain_id or find_id(body, "storage_domains/storage_domain")
    sd_name = find_text(body, "storage_domains/storage_domain/name")
    if not sd_id and sd_name:
        sd_id = next((s["id"] for s in engine.store["storagedomains"].values()
                      if s["name"] == sd_name), None)
    if not sd_id:
        raise bad_request("Disk [storageDomain.id|name] required for add")
    engine.get("storagedomains", sd_id, "storage domain")
    backup = find_text(body, "backup", "none")
    if backup == "incremental" and fmt == "raw":
        raise conflict("Cannot add Virtual Disk. Incremental backup is not supported for RAW "
                       "format disks.")
    disk = new_disk(engine, alias or f"disk-{new_id()[:8]}", sd_id, size, fmt,
                    sparse=find_bool(body, "sparse", True), backup=backup, status="locked",
                    description=find_text(body, "description", ""), id=find_id(body, "."),
                    initial_size=find_int(body, "initial_size"))
    engine.materialize(disk)
    engine.later(_unlock, engine, disk["id"])
    engine.add_event(f"Add-Disk operation of '{disk['alias']}' was initiated by "
                     "admin@internal-authz.", code=2020, disk=disk["id"])
    return disk


def _unlock(engine: Engine, disk_id: str) -> None:
    disk = engine.store["disks"].get(disk_id)
    if disk and disk["status"] == "locked":
        disk["status"] = "ok"
        engine.add_event(f"The disk '{disk['alias']}' was successfully added.", code=2021,
                         disk=disk_id)


def register(router: Router, engine: Engine) -> None:
    """Routes of disks and disk snapshots."""
    def list_disks(request: Request, sd_id: str | None = None):
        with engine.lock:
            disks = [d for d in engine.store["disks"].values()
                     if sd_id is None or d["storage_domain"] == sd_id]
            return list_answer(request, "disks", "disk", disks,
                               lambda d: render_disk(engine, d), disk_fields)

    def get_disk(request: Request):
        with engine.lock:
            return ok("disk", render_disk(engine, engine.get("disks", request.params["disk"],
                                                             "disk")))

    def add_disk(request: Request, sd_id: str | None = None):
        body = request.xml()
        with engine.lock:
            if sd_id:
                engine.get("storagedomains", sd_id, "storage domain")
            disk = create_disk(engine, body, sd_id)
            engine.save()
            return created("disk", render_disk(engine, disk))

    router.add("GET", "disks", list_disks)
    router.add("POST", "disks", add_disk)
    router.add("GET", "disks/{disk}", get_disk)
    router.add("DELETE", "disks/{disk}", lambda r: remove_disk(engine, r))
    router.add("PUT", "disks/{disk}", lambda r: update_disk(engine, r))
    router.add("GET", "storagedomains/{sd}/disks", lambda r: list_disks(r, r.params["sd"]))
    router.add("POST", "storagedomains/{sd}/disks", lambda r: add_disk(r, r.params["sd"]))
    router.add("GET", "storagedomains/{sd}/disks/{disk}", get_disk)


def remove_disk(engine: Engine, request: Request):
    """DELETE /disks/{id}: refused while locked or attached to a running VM."""
    from simulator.handlers.vm_devices import attached_vm

    with engine.lock:
        disk = engine.get("disks", request.params["disk"], "disk")
        if disk["status"] == "locked":
            raise conflict(f"Cannot remove Virtual Disk. Disk {disk['alias']} is locked. Please "
                           "try again in a few minutes.")
        from simulator.handlers.backups import disks_in_backup

        if disk["id"] in disks_in_backup(engine):
            raise conflict(f"Cannot remove Virtual Disk. Disk {disk['alias']} is in a backup.")
        vm = attached_vm(engine, disk["id"])
        if vm is not None:
            if vm["status"] != "down":
                raise conflict(f"Cannot remove Virtual Disk. VM {vm['name']} is running.")
            vm["disk_attachments"] = [a for a in vm["disk_attachments"] if a["disk"] != disk["id"]]
        del engine.store["disks"][disk["id"]]
        delete_disk_files(engine, disk)
        engine.add_event(f"Disk {disk['alias']} was successfully removed.", code=2014)
        engine.save()
        return removed()


def recover(engine: Engine) -> None:
    """Unlock disks a restart left locked by an add (transfers and snapshots unlock theirs)."""
    busy = {t["disk"] for t in engine.store["imagetransfers"].values()
            if not t["phase"].startswith("finished")}
    busy |= {e["disk"] for s in engine.store["snapshots"].values() if s["status"] == "locked"
             for e in s["disks"]}
    for disk in engine.store["disks"].values():
        if disk["status"] == "locked" and disk["id"] not in busy:
            engine.later(_unlock, engine, disk["id"])


def update_disk(engine: Engine, request: Request):
    """PUT /disks/{id}: alias, description and the incremental backup flag."""
    body = request.xml()
    with engine.lock:
        disk = engine.get("disks", request.params["disk"], "disk")
        backup = find_text(body, "backup")
        if backup not in (None, "incremental", "none"):
            raise bad_request(f"Invalid value '{backup}' for backup; use incremental or none.",
                              reason="Invalid value")
        if backup == "incremental" and disk["volumes"][-1]["format"] == "raw":
            raise conflict("Cannot edit Virtual Disk. Incremental backup is not supported for "
                           "RAW format disks.")
        if backup:
            disk["backup"] = backup
        disk["alias"] = find_text(body, "alias") or find_text(body, "name") or disk["alias"]
        disk["description"] = find_text(body, "description", disk.get("description", ""))
        engine.save()
        return ok("disk", render_disk(engine, disk))
