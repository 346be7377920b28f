"""Image transfers: download and upload of disks, disk snapshots and backups through imageio.

Phases as oVirt moves them: initializing -> transferring -> (finalize) finalizing_success ->
finished_success; cancel -> cancelled_user -> finished_failure; an inactivity timeout applies the
timeout policy (cancel: cancelled_system -> finished_failure; pause: paused_system; legacy:
pause uploads, cancel downloads). The disk is locked while its transfer is active and the
engine keeps the transfer entity after it finished (as engines since 4.4.7 do).
"""

import logging

from simulator import faults
from simulator.engine import Engine, now
from simulator.errors import bad_request, conflict, not_found
from simulator.handlers.common import list_answer
from simulator.routing import Request, Router, action_done, created, ok
from simulator.store import new_id
from simulator.xmlio import find_id, find_int, find_text, href, ref

log = logging.getLogger("simulator")

TICKET_TIMEOUT = 300
MONITOR_INTERVAL = 1.0
RETRY = 0.3
ACTIVE_PHASES = ("initializing", "transferring", "resuming", "paused_user", "paused_system")
FINISHED_PHASES = ("finished_success", "finished_failure", "finished_cleanup")


def render_transfer(engine: Engine, transfer: dict) -> dict:
    """A transfer as `<image_transfer>`."""
    disk = engine.store["disks"].get(transfer["disk"])
    snapshot = None
    if transfer.get("snapshot") and disk:
        snapshot = {"@href": href(f"storagedomains/{disk['storage_domain']}/disksnapshots/"
                                  f"{transfer['snapshot']}"), "@id": transfer["snapshot"]}
    return {
        "@href": href(f"imagetransfers/{transfer['id']}"), "@id": transfer["id"],
        "active": transfer["phase"] in ("initializing", "transferring", "resuming"),
        "direction": transfer["direction"], "format": transfer["format"],
        "inactivity_timeout": transfer["inactivity_timeout"], "phase": transfer["phase"],
        "proxy_url": transfer.get("proxy_url"), "shallow": transfer.get("shallow", False),
        "timeout_policy": transfer["timeout_policy"], "transfer_url": transfer.get("transfer_url"),
        "transferred": transfer.get("transferred", 0),
        "backup": ref(f"vms/{transfer['vm']}/backups", transfer["backup"])
        if transfer.get("backup") else None,
        "disk": ref("disks", transfer["disk"]),
        "host": ref("hosts", transfer["host"]) if transfer.get("host") else None,
        "image": {"@id": transfer["volume"]},
        "snapshot": snapshot,
    }


def register(router: Router, engine: Engine) -> None:
    """Routes of image transfers."""
    def list_transfers(request: Request):
        with engine.lock:
            return list_answer(request, "image_transfers", "image_transfer",
                               list(engine.store["imagetransfers"].values()),
                               lambda t: render_transfer(engine, t))

    def get_transfer(request: Request):
        with engine.lock:
            transfer = engine.get("imagetransfers", request.params["id"], "image transfer")
            return ok("image_transfer", render_transfer(engine, transfer))

    router.add("GET", "imagetransfers", list_transfers)
    router.add("POST", "imagetransfers", lambda r: add_transfer(engine, r))
    router.add("GET", "imagetransfers/{id}", get_transfer)
    for action in ("finalize", "cancel", "pause", "resume", "extend"):
        router.add("POST", f"imagetransfers/{{id}}/{action}",
                   lambda r, action=action: transfer_action(engine, r, action))


def _target(engine: Engine, body) -> tuple[dict, str, str | None, dict | None]:
    """(disk, volume id, snapshot volume id, backup) the request names."""
    from simulator.handlers.snapshots import find_disk_snapshot

    backup_id = find_id(body, "backup")
    snapshot_id = find_id(body, "snapshot")
    disk_id = find_id(body, "disk") or find_id(body, "image")
    backup = engine.get("backups", backup_id, "backup") if backup_id else None
    if snapshot_id:
        disk, _snapshot = find_disk_snapshot(engine, snapshot_id)
        return disk, snapshot_id, snapshot_id, backup
    if not disk_id:
        raise bad_request("ImageTransfer [disk.id|snapshot.id] required for add")
    disk = engine.get("disks", disk_id, "disk")
    return disk, disk["volumes"][-1]["id"], None, backup


def _validate(engine: Engine, disk: dict, direction: str, fmt: str, snapshot, backup) -> None:
    from simulator.handlers.vm_devices import attached_vm

    if direction not in ("download", "upload"):
        raise bad_request(f"Invalid direction '{direction}'; use download or upload.",
                          reason="Invalid value")
    if fmt not in ("raw", "cow"):
        raise bad_request(f"Invalid format '{fmt}'; use raw or cow.", reason="Invalid value")
    for other in engine.store["imagetransfers"].values():
        if other["disk"] == disk["id"] and other["phase"] not in FINISHED_PHASES:
            raise conflict(f"Cannot transfer Virtual Disk. The disk {disk['alias']} is already "
                           "being transferred.")
    if backup is not None:
        from simulator.handlers.backups import validate_backup_transfer

        validate_backup_transfer(engine, backup, disk, direction, fmt)
        return
    from simulator.handlers.backups import disks_in_backup

    if disk["id"] in disks_in_backup(engine):
        raise conflict(f"Cannot transfer Virtual Disk. Disk {disk['alias']} is in a backup; "
                       "transfer it through the backup.")
    if disk["status"] != "ok":
        raise conflict(f"Cannot transfer Virtual Disk. Disk {disk['alias']} status is "
                       f"{disk['status'].capitalize()}. Please try again later.")
    vm = attached_vm(engine, disk["id"])
    if vm is not None and vm["status"] != "down" and snapshot is None:
        raise conflict(f"Cannot transfer Virtual Disk. Disk {disk['alias']} is attached to VM "
                       f"{vm['name']} which is running; transfer a snapshot of it instead.")


def add_transfer(engine: Engine, request: Request):
    """POST /imagetransfers: initializing now, transferring once imageio has the ticket."""
    body = request.xml()
    with engine.lock:
        disk, volume_id, snapshot, backup = _target(engine, body)
        direction = find_text(body, "direction", "upload")
        fmt = find_text(body, "format", "cow")
        _validate(engine, disk, direction, fmt, snapshot, backup)
        host = find_id(body, "host") or _host_for(engine, disk)
        if snapshot and direction == "upload":
            raise conflict("Cannot transfer Virtual Disk. A disk snapshot can only be "
                           "downloaded.")
        transfer = {
            "id": new_id(), "direction": direction, "format": fmt, "disk": disk["id"],
            "volume": volume_id, "snapshot": snapshot,
            "backup": backup["id"] if backup else None, "vm": backup["vm"] if backup else None,
            "phase": "initializing", "host": host, "created": now(),
            "inactivity_timeout": find_int(body, "inactivity_timeout", 60),
            "timeout_policy": find_text(body, "timeout_policy", "legacy"),
            "shallow": (find_text(body, "shallow", "false") or "").lower() == "true",
            # No description: the real engine doesn't store one for transfers (it reads back empty).
            "transferred": 0,
        }
        if backup is None:
            disk["status"] = "locked"
        engine.store["imagetransfers"][transfer["id"]] = transfer
        engine.add_event(f"Image {direction} of disk {disk['alias']} was initiated by "
                         "admin@internal-authz.", code=1031, disk=disk["id"])
        engine.later(_open, engine, transfer["id"])
        engine.save()
        return created("image_transfer", render_transfer(engine, transfer))


def _host_for(engine: Engine, disk: dict) -> str | None:
    from simulator.handlers.vm_devices import attached_vm

    vm = attached_vm(engine, disk["id"])
    if vm and vm.get("host") and vm["status"] == "up":
        return vm["host"]
    sd = engine.store["storagedomains"].get(disk["storage_domain"], {})
    clusters = {c["id"] for c in engine.store["clusters"].values()
                if c["data_center"] == sd.get("data_center")}
    hosts = sorted(h["id"] for h in engine.store["hosts"].values() if h["cluster"] in clusters)
    return hosts[0] if hosts else None


def _export_of(engine: Engine, transfer: dict) -> tuple:
    """(volume path, format, dirty bitmap) the transfer exports."""
    disk = engine.store["disks"][transfer["disk"]]
    engine.materialize(disk)
    volume = next(v for v in disk["volumes"] if v["id"] == transfer["volume"])
    bitmap = None
    if transfer.get("backup"):
        from simulator.handlers.backups import backup_export

        return backup_export(engine, transfer, disk)
    return engine.volume_path(disk, volume), volume["format"], bitmap


def _open(engine: Engine, transfer_id: str, reopen: bool = False) -> None:
    transfer = engine.store["imagetransfers"].get(transfer_id)
    if transfer is None or (not reopen and transfer["phase"] != "initializing"):
        return
    disk = engine.store["disks"].get(transfer["disk"])
    if disk is None:
        transfer["phase"] = "finished_failure"
        return
    try:
        path, fmt, bitmap = _export_of(engine, transfer)
        endpoint = engine.require_dataplane().open_transfer(
            transfer_id, path, fmt, transfer["direction"], transfer["format"],
            _ticket_size(disk, transfer), TICKET_TIMEOUT, transfer["inactivity_timeout"],
            whole_chain=not transfer.get("shallow"), dirty_bitmap=bitmap,
            ticket_id=transfer.get("ticket_id"))
    except Exception as error:
        log.exception("opening transfer %s failed", transfer_id)
        engine.add_event(f"Image transfer of disk {disk['alias']} failed: {error}",
                         severity="error", code=1032, disk=disk["id"])
        _release_disk(engine, transfer, failed=True)
        transfer["phase"] = "finished_failure"
        return
    transfer.update(ticket_id=endpoint.ticket_id, transfer_url=endpoint.transfer_url,
                    proxy_url=endpoint.proxy_url)
    if not reopen:
        transfer["phase"] = "transferring"
    engine.later(_monitor, engine, transfer_id, delay=MONITOR_INTERVAL)


def _ticket_size(disk: dict, transfer: dict) -> int:
    """What the data plane sizes the ticket by: a cow upload grows to the disk's initial size."""
    if transfer["direction"] == "upload" and transfer["format"] == "cow":
        return disk.get("initial_size") or disk["provisioned_size"]
    return disk["provisioned_size"]


def _monitor(engine: Engine, transfer_id: str) -> bool:
    """Keep the ticket alive while used and apply the inactivity timeout policy.

    Returns whether the model changed (the engine saves only then).
    """
    transfer = engine.store["imagetransfers"].get(transfer_id)
    if transfer is None or transfer["phase"] not in ("transferring", "resuming"):
        return False
    dataplane = engine.require_dataplane()
    try:
        activity = dataplane.transfer_activity(transfer_id)
        endpoint = dataplane.endpoint(transfer_id)
    except Exception:
        log.exception("monitoring transfer %s failed", transfer_id)
        engine.later(_monitor, engine, transfer_id, delay=MONITOR_INTERVAL)
        return False
    before = (transfer.get("transferred"), transfer.get("transfer_url"))
    transfer["transferred"] = activity["transferred"]
    transfer.update(transfer_url=endpoint.transfer_url, proxy_url=endpoint.proxy_url)
    idle = activity["idle_seconds"]
    if not activity["active"] and idle > transfer["inactivity_timeout"]:
        _timed_out(engine, transfer)
        return True
    dataplane.extend_transfer(transfer_id, TICKET_TIMEOUT)
    engine.later(_monitor, engine, transfer_id, delay=MONITOR_INTERVAL)
    return before != (transfer["transferred"], transfer["transfer_url"])


def _timed_out(engine: Engine, transfer: dict) -> None:
    policy = transfer["timeout_policy"]
    disk = engine.store["disks"].get(transfer["disk"], {})
    engine.add_event(f"Transfer of disk {disk.get('alias')} was idle for more than "
                     f"{transfer['inactivity_timeout']} seconds.", severity="warning", code=1033,
                     disk=transfer["disk"])
    if policy == "pause" or (policy == "legacy" and transfer["direction"] == "upload"):
        transfer["phase"] = "paused_system"
        return
    transfer["phase"] = "cancelled_system"
    engine.later(_finish, engine, transfer["id"], False)


def transfer_action(engine: Engine, request: Request, action: str):
    """finalize, cancel, pause, resume and extend."""
    with engine.lock:
        transfer = engine.get("imagetransfers", request.params["id"], "image transfer")
        phase = transfer["phase"]
        if action == "extend":
            return action_done()
        if action == "finalize":
            if phase not in ("transferring", "paused_user", "paused_system", "resuming"):
                raise conflict(f"Cannot finalize image transfer in phase {phase}.")
            transfer["phase"] = "finalizing_success"
            transfer["stuck"] = faults.take(engine, "stuck-finalizing") is not None
            engine.later(_finish, engine, transfer["id"], True)
        elif action == "cancel":
            if phase in FINISHED_PHASES or phase.startswith("finalizing"):
                raise conflict(f"Cannot cancel image transfer in phase {phase}.")
            transfer["phase"] = "cancelled_user"
            engine.later(_finish, engine, transfer["id"], False)
        elif action == "pause":
            if phase != "transferring":
                raise conflict(f"Cannot pause image transfer in phase {phase}.")
            transfer["phase"] = "paused_user"
        else:
            if phase not in ("paused_user", "paused_system"):
                raise conflict(f"Cannot resume image transfer in phase {phase}.")
            transfer["phase"] = "transferring"
            engine.later(_monitor, engine, transfer["id"], delay=MONITOR_INTERVAL)
        engine.save()
        return action_done()


def _finish(engine: Engine, transfer_id: str, success: bool) -> None:
    transfer = engine.store["imagetransfers"].get(transfer_id)
    if transfer is None or transfer["phase"] in FINISHED_PHASES:
        return
    if success and transfer.get("stuck") and faults.active(engine, "stuck-finalizing"):
        engine.later(_finish, engine, transfer_id, success, delay=RETRY)
        return
    if not success:
        transfer["phase"] = "finalizing_failure"
    try:
        engine.require_dataplane().close_transfer(transfer_id)
    except Exception as error:
        # After a restart the data plane may not hold the transfer any more.
        log.info("closing transfer %s: %s", transfer_id, error)
    _release_disk(engine, transfer, failed=not success)
    transfer["phase"] = "finished_success" if success else "finished_failure"
    disk = engine.store["disks"].get(transfer["disk"], {})
    engine.add_event(f"Image {transfer['direction']} of disk {disk.get('alias')} "
                     f"{'succeeded' if success else 'was cancelled or failed'}.",
                     severity="normal" if success else "warning",
                     code=1034 if success else 1035, disk=transfer["disk"])


def _release_disk(engine: Engine, transfer: dict, failed: bool) -> None:
    disk = engine.store["disks"].get(transfer["disk"])
    if disk is None:
        return
    engine.refresh_actual_size(disk)
    if transfer.get("backup"):
        return
    if failed and transfer["direction"] == "upload":
        # oVirt marks a disk whose upload failed illegal: its content is incomplete.
        disk["status"] = "illegal"
    else:
        disk["status"] = "ok"


def recover(engine: Engine) -> None:
    """Re-open transfers a restart interrupted (imageio and qemu-nbd did not survive it)."""
    for transfer in engine.store["imagetransfers"].values():
        phase = transfer["phase"]
        if phase == "initializing":
            engine.later(_open, engine, transfer["id"])
        elif phase in ("transferring", "resuming", "paused_user", "paused_system"):
            engine.later(_open, engine, transfer["id"], True, delay=0)
        elif phase == "finalizing_success":
            engine.later(_finish, engine, transfer["id"], True)
        elif phase in ("cancelled_user", "cancelled_system", "finalizing_failure"):
            engine.later(_finish, engine, transfer["id"], False)


def get_transfer_or_404(engine: Engine, transfer_id: str) -> dict:
    """A transfer by id."""
    transfer = engine.store["imagetransfers"].get(transfer_id)
    if transfer is None:
        raise not_found("image transfer")
    return transfer
