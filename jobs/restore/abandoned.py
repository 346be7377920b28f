"""What a restore session whose driver died left in the engine, removed by reconcile.

The driver writes the ids of what it creates onto the session as it goes
(``RestoreRun.remember``). When reconcile has failed such a session, it calls
``clean_abandoned_restores(engine, manager)``: the transfers are cancelled and
the VMs and disks removed — unless the original VM had already been replaced
(``kept``), in which case the restored VM is the only copy and stays.
"""

from __future__ import annotations

from dataclasses import dataclass

from jobs.choices import ACTIVE_STATES, SessionKind
from jobs.models import RestorePoint, Session
from jobs.restore.requests import RestoreRequest
from plugin import engine as ovirt
from plugin.errors import EngineError

TIMEOUT = 120.0


@dataclass(frozen=True)
class Cleaned:
    """One object reconcile dealt with: its session, kind ("transfer", "vm", "disk"), id, and what happened."""

    session_id: int
    kind: str
    object_id: str
    message: str
    ok: bool = True


def abandoned_restores(manager) -> list[Session]:
    """Ended restore sessions of this manager that still list objects they created and didn't keep."""
    found = []
    for session in Session.objects.filter(kind=SessionKind.RESTORE).exclude(state__in=ACTIVE_STATES) \
            .filter(options__has_key="created"):
        created = session.options.get("created") or {}
        if created.get("kept") or not any(created.get(k) for k in ("transfers", "vms", "disks")):
            continue
        request = RestoreRequest.from_options(session.options)
        point = RestorePoint.objects.select_related("vm").filter(pk=request.point).first()
        owner = request.manager or (point.vm.manager_id if point and point.vm_id else None)
        if owner == manager.pk:
            found.append(session)
    return found


def clean_abandoned_restores(engine, manager) -> list[Cleaned]:
    """Remove what ended restore sessions left behind in this manager's engine; one entry per object."""
    results: list[Cleaned] = []
    for session in abandoned_restores(manager):
        results += _clean(engine, session)
    return results


def _clean(engine, session: Session) -> list[Cleaned]:
    created = dict(session.options["created"])
    results = []
    steps = (("transfers", "transfer", _cancel_transfer), ("vms", "vm", _remove_vm),
             ("disks", "disk", _remove_disk))
    for key, kind, action in steps:
        left = []
        for object_id in created.get(key, []):
            try:
                message = action(engine, object_id)
                results.append(Cleaned(session.pk, kind, object_id, message))
            except EngineError as exc:
                left.append(object_id)
                results.append(Cleaned(session.pk, kind, object_id, f"could not remove {kind} {object_id}: "
                                       f"{exc}", ok=False))
        created[key] = left
    Session.objects.filter(pk=session.pk).update(options={**session.options, "created": created})
    return results


def _cancel_transfer(engine, transfer_id: str) -> str:
    ovirt.cancel_transfer(engine, transfer_id)
    ovirt.wait_transfer_ended(engine, transfer_id, timeout=TIMEOUT)
    return f"cancelled image transfer {transfer_id} of an abandoned restore"


def _remove_vm(engine, vm_id: str) -> str:
    if not ovirt.remove_vm(engine, vm_id, timeout=TIMEOUT):
        return f"VM {vm_id} of an abandoned restore was gone already"
    return f"removed VM {vm_id} (and its disks) of an abandoned restore"


def _remove_disk(engine, disk_id: str) -> str:
    if not ovirt.remove_disk(engine, disk_id, timeout=TIMEOUT):
        return f"disk {disk_id} of an abandoned restore was gone already"
    return f"removed disk {disk_id} of an abandoned restore"
