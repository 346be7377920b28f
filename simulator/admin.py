"""The admin endpoint outside the API (/simulator/admin/...), for the CLI and tests: faults,
guest writes and disk image paths. JSON in and out, HTTP basic auth as admin@internal."""

import json
from urllib.parse import parse_qs

from simulator import faults
from simulator.engine import Engine
from simulator.errors import bad_request, conflict, not_found

PREFIX = "/simulator/admin/"


def dispatch(engine: Engine, method: str, raw_path: str, body: bytes) -> tuple[int, object]:
    """Answer one admin call with (status, JSON value)."""
    path, _, query_string = raw_path.partition("?")
    query = {k: v[-1] for k, v in parse_qs(query_string).items()}
    data = _json_body(body)
    parts = [p for p in path.split("/") if p]
    with engine.lock:
        if parts == ["faults"] and method == "GET":
            return 200, {"faults": engine.store.faults, "dataplane": _dataplane_faults(engine)}
        if parts == ["faults"] and method == "POST":
            return 201, faults.add(engine, data)
        if parts[:1] == ["faults"] and method == "DELETE":
            removed = faults.clear(engine, parts[1] if len(parts) > 1 else None)
            if len(parts) > 1 and not removed:
                raise not_found("fault")
            return 200, {"removed": removed}
        if parts == ["guest-write"] and method == "POST":
            return 200, guest_write(engine, data)
        if parts == ["disk-image"] and method == "GET":
            return 200, disk_image(engine, query.get("disk", ""))
        if parts == ["checkpoints"] and method == "POST":
            from simulator.handlers.checkpoints import checkpoint_fault

            return 200, checkpoint_fault(engine, data)
    raise not_found("admin resource")


def _json_body(body: bytes) -> dict:
    if not body:
        return {}
    try:
        value = json.loads(body)
    except ValueError as error:
        raise bad_request(f"The body must be JSON: {error}") from error
    if not isinstance(value, dict):
        raise bad_request("The body must be a JSON object.")
    return value


def _dataplane_faults(engine: Engine) -> list:
    if engine.dataplane is None or not hasattr(engine.dataplane, "list_faults"):
        return []
    return engine.dataplane.list_faults()


def find_vm_disk(engine: Engine, vm_name: str, alias: str | None) -> tuple[dict, dict]:
    """A VM by name and one of its disks by alias (its first disk when no alias is given)."""
    vm = next((v for v in engine.store["vms"].values() if v["name"] == vm_name), None)
    if vm is None:
        raise not_found(f"VM '{vm_name}'")
    for attachment in vm["disk_attachments"]:
        disk = engine.store["disks"].get(attachment["disk"])
        if disk and (alias is None or disk["alias"] == alias):
            return vm, disk
    raise not_found(f"disk '{alias}' of VM '{vm_name}'" if alias else f"disk of VM '{vm_name}'")


def guest_write(engine: Engine, data: dict) -> dict:
    """Write deterministic data into a VM's disk as its guest would."""
    vm, disk = find_vm_disk(engine, data.get("vm") or "", data.get("disk"))
    try:
        offset, length = int(data["offset"]), int(data["length"])
        seed = int(data.get("seed") or 0)
    except (KeyError, TypeError, ValueError) as error:
        raise bad_request("guest-write needs integer offset and length (and seed).") from error
    if offset < 0 or length <= 0 or offset + length > disk["provisioned_size"]:
        raise bad_request(f"The range {offset}+{length} is outside the disk "
                          f"({disk['provisioned_size']} bytes).")
    engine.materialize(disk)
    volume = engine.active_volume(disk)
    try:
        engine.require_dataplane().guest_write(engine.volume_path(disk, volume),
                                               volume["format"], offset, length, seed)
    except Exception as error:
        # qemu refuses to write while a plain transfer holds the image: the disk is locked.
        raise conflict(f"Disk {disk['alias']} is locked: {error}") from error
    engine.refresh_actual_size(disk)
    engine.save()
    return {"vm": vm["id"], "disk": disk["id"], "offset": offset, "length": length}


def disk_image(engine: Engine, disk_id: str) -> dict:
    """The path and format of a disk's image (its active volume; qemu follows the chain)."""
    disk = engine.get("disks", disk_id, "disk")
    engine.materialize(disk)
    engine.save()
    volume = engine.active_volume(disk)
    path = engine.volume_path(disk, volume)
    fmt = volume["format"]
    if engine.dataplane is not None and hasattr(engine.dataplane, "guest_view"):
        view_path, fmt = engine.dataplane.guest_view(path)
        path = view_path
    return {"disk": disk["id"], "path": str(path),
            "format": "qcow2" if fmt in ("cow", "qcow2") else "raw",
            "chain": [str(engine.volume_path(disk, v)) for v in disk["volumes"]]}
