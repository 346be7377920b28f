"""Incremental backups and checkpoints, as oVirt 4.4+ offers them.

A backup moves initializing -> ready -> (finalize) finalizing -> succeeded, or failed. At ready
the new checkpoint's bitmap is added to each qcow2 disk with incremental backup enabled and the
disks are frozen for the backup (the guest then writes into an overlay: the point in time, see
the data plane); finalizing merges those writes back and records the checkpoint. Raw disks are
always backed up full and get no bitmap. Checkpoints are qemu persistent dirty bitmaps named by
the checkpoint's id in the disks' active volumes.
"""

import logging

from simulator import faults
from simulator.engine import Engine, now
from simulator.errors import bad_request, conflict, not_found
from simulator.handlers.checkpoints import (
    record_checkpoint,
    remove_bitmap_everywhere,
)
from simulator.handlers.common import links, list_answer
from simulator.routing import Request, Router, action_done, created, ok
from simulator.store import new_id
from simulator.xmlio import Many, find_id, find_text, href, ref

log = logging.getLogger("simulator")

RETRY = 0.3
ACTIVE_PHASES = ("initializing", "starting", "ready", "finalizing")


def render_backup(backup: dict) -> dict:
    """A backup as `<backup>` (the SDK reads only that tag)."""
    base = f"vms/{backup['vm']}/backups/{backup['id']}"
    return {
        "@href": href(base), "@id": backup["id"],
        "description": backup.get("description") or None,
        "link": links(base, "disks"),
        "creation_date": backup["creation_date"],
        "from_checkpoint_id": backup.get("from_checkpoint_id"),
        "modification_date": backup.get("modification_date", backup["creation_date"]),
        "phase": backup["phase"],
        "to_checkpoint_id": backup.get("to_checkpoint_id") if backup["phase"] != "initializing"
        else None,
        "disks": Many("disk", [ref("disks", d) for d in backup["disks"]]),
        "host": ref("hosts", backup["host"]) if backup.get("host") else None,
        "vm": ref("vms", backup["vm"]),
    }


def register(router: Router, engine: Engine) -> None:
    """Routes of backups."""
    router.add("GET", "vms/{vm}/backups", lambda r: list_backups(engine, r))
    router.add("POST", "vms/{vm}/backups", lambda r: add_backup(engine, r))
    router.add("GET", "vms/{vm}/backups/{backup}", lambda r: get_backup(engine, r))
    router.add("POST", "vms/{vm}/backups/{backup}/finalize", lambda r: finalize(engine, r))
    router.add("GET", "vms/{vm}/backups/{backup}/disks", lambda r: backup_disks(engine, r))


# -- queries ------------------------------------------------------------------------------------

def active_backup(engine: Engine, vm_id: str) -> dict | None:
    """The VM's backup that has not ended yet."""
    return next((b for b in engine.store["backups"].values()
                 if b["vm"] == vm_id and b["phase"] in ACTIVE_PHASES), None)


def disks_in_backup(engine: Engine) -> set[str]:
    """Ids of disks a running backup holds (no snapshot or plain transfer may touch them)."""
    return {d for b in engine.store["backups"].values() if b["phase"] in ACTIVE_PHASES
            for d in b["disks"]}


def _backup(engine: Engine, request: Request) -> tuple[dict, dict]:
    vm = engine.get("vms", request.params["vm"], "VM")
    backup = engine.store["backups"].get(request.params["backup"])
    if backup is None or backup["vm"] != vm["id"]:
        raise not_found("backup")
    return vm, backup


def list_backups(engine: Engine, request: Request):
    """GET /vms/{id}/backups."""
    with engine.lock:
        vm = engine.get("vms", request.params["vm"], "VM")
        backups = sorted((b for b in engine.store["backups"].values() if b["vm"] == vm["id"]),
                         key=lambda b: b["creation_date"])
        return list_answer(request, "backups", "backup", backups, render_backup)


def get_backup(engine: Engine, request: Request):
    """GET /vms/{id}/backups/{backup}."""
    with engine.lock:
        return ok("backup", render_backup(_backup(engine, request)[1]))


def backup_disks(engine: Engine, request: Request):
    """GET /vms/{id}/backups/{backup}/disks: each disk with its backup_mode."""
    from simulator.handlers.disks import render_disk

    with engine.lock:
        _vm, backup = _backup(engine, request)
        items = [render_disk(engine, engine.store["disks"][d], backup["modes"].get(d))
                 for d in backup["disks"] if d in engine.store["disks"]]
        return ok("disks", Many("disk", items))


# -- starting a backup ------------------------------------------------------------------------

def incremental_capable(disk: dict) -> bool:
    """Whether a disk can carry checkpoints: qcow2 with incremental backup enabled."""
    return disk["volumes"][-1]["format"] == "cow" and disk.get("backup") == "incremental"


def _chosen_disks(engine: Engine, vm: dict, body) -> list[dict]:
    attached = [a["disk"] for a in vm["disk_attachments"]]
    elements = body.findall("disks/disk")
    wanted = [e.get("id") or find_text(e, "id") for e in elements] if elements else attached
    if not wanted:
        raise bad_request("Backup [disks] required for add")
    disks = []
    for disk_id in wanted:
        if disk_id not in attached:
            raise conflict(f"Cannot backup VM. Disk {disk_id} is not attached to VM "
                           f"{vm['name']}.")
        disks.append(engine.store["disks"][disk_id])
    return disks


def _validate_backup(engine: Engine, vm: dict, disks: list[dict], from_checkpoint: str | None):
    from simulator.handlers.transfers import FINISHED_PHASES

    if vm["status"] not in ("up", "down"):
        raise conflict(f"Cannot backup VM. VM {vm['name']} is {vm['status']}.")
    if active_backup(engine, vm["id"]) is not None:
        raise conflict(f"Cannot backup VM. The VM {vm['name']} is during a backup operation.")
    busy = {t["disk"] for t in engine.store["imagetransfers"].values()
            if t["phase"] not in FINISHED_PHASES}
    for disk in disks:
        if disk["status"] != "ok" or disk["id"] in busy:
            raise conflict(f"Cannot backup VM. Disk {disk['alias']} is locked. Please try again "
                           "in a few minutes.")
    if any(s["vm"] == vm["id"] and s["status"] == "locked"
           for s in engine.store["snapshots"].values()):
        raise conflict(f"Cannot backup VM. A snapshot of VM {vm['name']} is being created or "
                       "removed.")
    if from_checkpoint:
        checkpoint = engine.store["checkpoints"].get(from_checkpoint)
        if checkpoint is None or checkpoint["vm"] != vm["id"]:
            raise conflict(f"Cannot backup VM. Checkpoint {from_checkpoint} does not exist.")
        if checkpoint["state"] == "invalid":
            raise conflict(f"Cannot backup VM. Checkpoint {from_checkpoint} is invalid; take a "
                           "full backup.")


def add_backup(engine: Engine, request: Request):
    """POST /vms/{id}/backups: initializing now, ready after the engine's delay."""
    from simulator.handlers.transfers import _host_for

    body = request.xml()
    with engine.lock:
        vm = engine.get("vms", request.params["vm"], "VM")
        disks = _chosen_disks(engine, vm, body)
        from_checkpoint = find_text(body, "from_checkpoint_id") or None
        _validate_backup(engine, vm, disks, from_checkpoint)
        backup = {
            "id": find_id(body, ".") or new_id(), "vm": vm["id"], "phase": "initializing",
            "disks": [d["id"] for d in disks], "from_checkpoint_id": from_checkpoint,
            "to_checkpoint_id": None, "modes": {}, "creation_date": now(),
            "description": find_text(body, "description"),
            "host": vm.get("host") if vm["status"] == "up" else _host_for(engine, disks[0]),
            "fail": faults.take(engine, "backup-fail-initializing") is not None,
        }
        if backup["id"] in engine.store["backups"]:
            raise conflict(f"Cannot backup VM. A backup with id {backup['id']} exists already.")
        engine.store["backups"][backup["id"]] = backup
        engine.add_event(f"Backup of VM {vm['name']} was initiated by admin@internal-authz.",
                         code=10790, vm=vm["id"])
        engine.later(_start, engine, backup["id"])
        engine.save()
        return created("backup", render_backup(backup))


def _modes(engine: Engine, backup: dict, disks: list[dict]) -> dict[str, str]:
    """backup_mode per disk; raises BackupFailed when a bitmap to read from is gone."""
    checkpoint = engine.store["checkpoints"].get(backup["from_checkpoint_id"] or "")
    modes = {}
    for disk in disks:
        if checkpoint is None or not incremental_capable(disk) \
                or disk["id"] not in checkpoint["disks"]:
            modes[disk["id"]] = "full"
            continue
        volume = engine.volume_path(disk, disk["volumes"][-1])
        bitmaps = {b["name"]: b for b in engine.dataplane.list_bitmaps(volume)}
        found = bitmaps.get(checkpoint["id"])
        if found is None:
            raise BackupFailed(f"Bitmap does not exist: {checkpoint['id']} in disk "
                               f"{disk['alias']}")
        if not found["consistent"]:
            raise BackupFailed(f"Bitmap {checkpoint['id']} in disk {disk['alias']} is "
                               "inconsistent and cannot be used")
        modes[disk["id"]] = "incremental"
    return modes


class BackupFailed(Exception):
    """The host could not start the backup (a checkpoint's bitmap is missing or broken)."""


def _start(engine: Engine, backup_id: str) -> None:
    """initializing -> ready: bitmaps for the new checkpoint, then the point-in-time freeze."""
    backup = engine.store["backups"].get(backup_id)
    if backup is None or backup["phase"] != "initializing":
        return
    disks = [engine.store["disks"][d] for d in backup["disks"] if d in engine.store["disks"]]
    try:
        if backup.get("fail"):
            raise BackupFailed("Injected fault: the host failed to start the backup")
        dataplane = engine.require_dataplane()
        for disk in disks:
            engine.materialize(disk)
        backup["modes"] = _modes(engine, backup, disks)
        capable = [d for d in disks if incremental_capable(d)]
        to_checkpoint = new_id() if capable else None
        for disk in capable:
            dataplane.add_bitmap(engine.volume_path(disk, disk["volumes"][-1]), to_checkpoint)
        backup["to_checkpoint_id"] = to_checkpoint
        backup["checkpoint_disks"] = [d["id"] for d in capable]
        dataplane.begin_backup([engine.volume_path(d, d["volumes"][-1]) for d in disks])
        backup["frozen"] = True
    except Exception as error:
        _fail(engine, backup, str(error))
        return
    backup["phase"] = "ready"
    backup["modification_date"] = now()


def _fail(engine: Engine, backup: dict, reason: str) -> None:
    """End a backup as failed, dropping the bitmaps of the checkpoint it would have made."""
    log.info("backup %s failed: %s", backup["id"], reason)
    _release(engine, backup, keep_checkpoint=False)
    if "Bitmap" in reason and backup.get("from_checkpoint_id") in engine.store["checkpoints"]:
        # The engine learns from the host that the checkpoint is unusable.
        engine.store["checkpoints"][backup["from_checkpoint_id"]]["state"] = "invalid"
    backup["phase"] = "failed"
    backup["modification_date"] = now()
    vm = engine.store["vms"].get(backup["vm"], {})
    engine.add_event(f"Backup of VM {vm.get('name')} failed: {reason}", severity="error",
                     code=10792, vm=backup["vm"])


def _release(engine: Engine, backup: dict, keep_checkpoint: bool) -> None:
    """Merge the guest's writes back (always) and drop an unused checkpoint's bitmaps."""
    dataplane = engine.dataplane
    disks = [engine.store["disks"][d] for d in backup["disks"] if d in engine.store["disks"]]
    if dataplane is None:
        return
    if backup.pop("frozen", False):
        dataplane.end_backup([engine.volume_path(d, d["volumes"][-1]) for d in disks])
    if not keep_checkpoint and backup.get("to_checkpoint_id"):
        for disk in disks:
            if disk["id"] in backup.get("checkpoint_disks", []):
                remove_bitmap_everywhere(engine, disk, backup["to_checkpoint_id"])
    for disk in disks:
        engine.refresh_actual_size(disk)


# -- finishing ---------------------------------------------------------------------------------

def finalize(engine: Engine, request: Request):
    """POST /vms/{id}/backups/{backup}/finalize: finalizing, then succeeded."""
    with engine.lock:
        _vm, backup = _backup(engine, request)
        if backup["phase"] != "ready":
            raise conflict(f"Cannot finalize backup in phase {backup['phase']}.")
        from simulator.handlers.transfers import FINISHED_PHASES

        active = [t["id"] for t in engine.store["imagetransfers"].values()
                  if t.get("backup") == backup["id"] and t["phase"] not in FINISHED_PHASES]
        if active:  # as the engine refuses since 4.5.1: a client ends its transfers first
            raise conflict(f"Cannot stop VM backup. The backup has active image transfers: "
                           f"{', '.join(active)}.")
        backup["phase"] = "finalizing"
        backup["modification_date"] = now()
        backup["stuck"] = faults.take(engine, "backup-stuck-finalizing") is not None
        engine.later(_finish, engine, backup["id"])
        engine.save()
        return action_done()


def _finish(engine: Engine, backup_id: str) -> None:
    from simulator.handlers.transfers import FINISHED_PHASES

    backup = engine.store["backups"].get(backup_id)
    if backup is None or backup["phase"] != "finalizing":
        return
    if backup.get("stuck") and faults.active(engine, "backup-stuck-finalizing"):
        engine.later(_finish, engine, backup_id, delay=RETRY)
        return
    for transfer in engine.store["imagetransfers"].values():
        if transfer.get("backup") == backup_id and transfer["phase"] not in FINISHED_PHASES:
            # The engine ends the backup's transfers with it.
            engine.require_dataplane().close_transfer(transfer["id"])
            transfer["phase"] = "finished_success"
    _release(engine, backup, keep_checkpoint=True)
    if backup.get("to_checkpoint_id"):
        record_checkpoint(engine, backup)
    backup["phase"] = "succeeded"
    backup["modification_date"] = now()
    vm = engine.store["vms"].get(backup["vm"], {})
    engine.add_event(f"Backup of VM {vm.get('name')} completed successfully.", code=10791,
                     vm=backup["vm"])


# -- transfers of a backup ---------------------------------------------------------------------

def validate_backup_transfer(engine: Engine, backup: dict, disk: dict, direction: str,
                             fmt: str) -> None:
    """Refuse transfers a backup can't serve."""
    if backup["phase"] != "ready":
        raise conflict(f"Cannot transfer Virtual Disk. Backup {backup['id']} is not ready "
                       f"(phase {backup['phase']}).")
    if direction != "download":
        raise conflict("Cannot transfer Virtual Disk. A backup can only be downloaded.")
    if fmt != "raw":
        raise conflict("Cannot transfer Virtual Disk. Backup transfers must use the raw format.")
    if disk["id"] not in backup["disks"]:
        raise conflict(f"Cannot transfer Virtual Disk. Disk {disk['alias']} is not part of "
                       f"backup {backup['id']}.")


def backup_export(engine: Engine, transfer: dict, disk: dict) -> tuple:
    """(volume path, format, dirty bitmap) of a backup transfer: the frozen active volume."""
    backup = engine.store["backups"][transfer["backup"]]
    volume = disk["volumes"][-1]
    incremental = backup["modes"].get(disk["id"]) == "incremental"
    return (engine.volume_path(disk, volume), volume["format"],
            backup["from_checkpoint_id"] if incremental else None)


def recover(engine: Engine) -> None:
    """Resume backups a restart interrupted."""
    for backup in engine.store["backups"].values():
        if backup["phase"] == "initializing":
            engine.later(_start, engine, backup["id"])
        elif backup["phase"] == "finalizing":
            engine.later(_finish, engine, backup["id"])
