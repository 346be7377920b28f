"""Reconcile: sessions whose driver died, and what they left in the engine.

A running session whose heartbeat is older than VBR_SESSION_STALE_SECONDS has
no driver any more (the runner crashed or was killed): it is failed, its VM
locks are released and its disk tasks are stopped (queued ones at once). Then,
per manager, image transfers, backups and snapshots whose description carries
the project's tag (``vbr:<session id>``) but whose session is not alive are
cancelled, finalized or deleted. A dead backup session's driver may also have
written a VM's manifest (it does so while the engine finalizes) without living
to record its restore point: that manifest is deleted. Every action is recorded
as a ReconcileAction (the dashboard shows them) and in the dead session's log.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from jobs.choices import ACTIVE_STATES, LogLevel, ReconcileKind, SessionKind, SessionState
from jobs.models import ReconcileAction, Session, TaskSession, VmLock
from jobs.notifications import notify_session_end
from plugin import engine as ovirt
from plugin.errors import EngineError
from vbrsite.times import stamp

log = logging.getLogger(__name__)

RECENT_DAYS = 7
CLEANUP_TIMEOUT = 120.0


def _record(kind: str, message: str, *, session_id=None, manager=None, object_id: str = "") -> None:
    session = Session.objects.filter(pk=session_id).first() if session_id else None
    ReconcileAction.objects.create(kind=kind, message=message, session=session, manager=manager,
                                   object_id=object_id)
    if session is not None:
        session.log(f"Reconcile: {message}", LogLevel.WARNING if kind != ReconcileKind.ERROR else LogLevel.ERROR)
    log.info("reconcile: %s", message)


def fail_dead_sessions(stale_seconds: int | None = None) -> list[int]:
    """Fail running sessions whose heartbeat stopped; the ids failed."""
    stale = timedelta(seconds=settings.VBR_SESSION_STALE_SECONDS if stale_seconds is None else stale_seconds)
    cutoff = timezone.now() - stale
    failed = []
    candidates = Session.objects.filter(state=SessionState.RUNNING, heartbeat__lt=cutoff)
    for session in candidates:
        # One transaction: whoever sees the session failed also sees why.
        with transaction.atomic():
            # Conditional: a driver that beats again meanwhile keeps its session. Flagged to
            # stop too: a driver only stalled (not dead) reads the flag at its next beat and
            # stops, instead of handing out disks for a session that has ended.
            ended = Session.objects.filter(pk=session.pk, state=SessionState.RUNNING, heartbeat__lt=cutoff) \
                .update(state=SessionState.FAILED, finished=timezone.now(), cancel_requested=True,
                        summary="failed: its driver stopped (the runner died)")
            if not ended:
                continue
            failed.append(session.pk)
            TaskSession.objects.filter(session=session, state__in=ACTIVE_STATES).update(
                state=SessionState.FAILED, finished=timezone.now(), error="the session's driver died")
            VmLock.objects.filter(session=session).delete()
            _stop_disk_tasks(session.pk)
            _record(ReconcileKind.SESSION_FAILED,
                    f"session {session.pk} ({session.name}) failed: no heartbeat since "
                    f"{stamp(session.heartbeat)}; its driver died.", session_id=session.pk)
    for session_id in failed:  # the night the runner died is the night the mail matters most
        notify_session_end(Session.objects.select_related("job").get(pk=session_id))
    return failed


def _stop_disk_tasks(session_id: int) -> None:
    """Running disks stop within seconds; queued ones end now (their queue may have no runner)."""
    from workers import dispatch
    from workers.models import DiskTask

    dispatch.stop_tasks(DiskTask.objects.filter(session_id=session_id))


def release_orphan_locks() -> int:
    """Locks held by sessions that ended (a crash between the end and the release)."""
    orphans = VmLock.objects.exclude(session__state__in=ACTIVE_STATES)
    count = 0
    for lock in orphans.select_related("vm"):
        lock.delete()
        count += 1
        _record(ReconcileKind.LOCK_RELEASED, f"released VM {lock.vm.name}, held by ended session {lock.session_id}.",
                session_id=lock.session_id)
    return count


def reconcile_at_start() -> list[int]:
    """A control runner started: fail dead sessions; if any, queue the engine cleanup now."""
    failed = fail_dead_sessions()
    if failed:
        from django_q.tasks import async_task

        async_task("jobs.tasks.reconcile", failed, task_name="reconcile after runner start",
                   cluster=settings.Q_CLUSTER["name"])
    return failed


def live_session_ids() -> set[str]:
    """Ids (as in descriptions) of sessions that may still own engine objects."""
    return {str(pk) for pk in Session.objects.filter(state__in=ACTIVE_STATES).values_list("pk", flat=True)}


def reconcile_all(dead: list[int] | None = None) -> str:
    """Fail dead sessions, then clean every manager of what no live session owns; a summary.

    ``dead``: sessions failed already (by a runner's start) whose manifests are still to check.
    """
    from inventory.models import Manager

    failed = fail_dead_sessions()
    delete_unrecorded_manifests([*failed, *(dead or [])])
    release_orphan_locks()
    before = ReconcileAction.objects.count()
    for manager in Manager.objects.all():
        try:
            with ovirt.connect(manager.credentials(), timeout=settings.VBR_ENGINE_TIMEOUT) as engine:
                reconcile_manager(engine, manager)
        except EngineError as exc:
            log.warning("reconcile of manager %s skipped: %s", manager.name, exc)
    cleaned = ReconcileAction.objects.count() - before
    return f"{len(failed)} dead session(s) failed, {cleaned} action(s) in the engines"


def delete_unrecorded_manifests(session_ids: list[int]) -> int:
    """Delete the manifests dead backup sessions wrote for restore points they never recorded."""
    from jobs.driver.restore_points import discard_manifest
    from jobs.models import RestorePoint
    from repositories.datamover.client import DataMoverError

    deleted, listed = 0, {}  # repository pk -> its manifests' (id, session label): one listing each
    for session in Session.objects.filter(pk__in=session_ids, kind=SessionKind.BACKUP).select_related(
            "job__repository"):
        repository = session.backup_repository()
        if repository is None:
            continue
        recorded = set(RestorePoint.objects.filter(session=session).values_list("manifest_id", flat=True))
        try:
            if repository.pk not in listed:
                with repository.client() as client:
                    listed[repository.pk] = [(m["id"], (m.get("labels") or {}).get("session"))
                                             for m in client.list_manifests()]
        except DataMoverError as exc:
            _record(ReconcileKind.ERROR, f"could not look for manifests session {session.pk} left in "
                    f"repository {repository.name}: {exc}", session_id=session.pk)
            continue
        written = [manifest_id for manifest_id, label in listed[repository.pk] if label == str(session.pk)]
        for manifest_id in sorted(set(written) - recorded):
            problem = discard_manifest(repository, manifest_id)
            if problem:
                _record(ReconcileKind.ERROR, f"could not delete what session {session.pk} left: {problem}",
                        session_id=session.pk, object_id=manifest_id)
                continue
            deleted += 1
            _record(ReconcileKind.MANIFEST_DELETED,
                    f"deleted manifest {manifest_id} from repository {repository.name}: session {session.pk} "
                    "wrote it but died before recording its restore point.", session_id=session.pk,
                    object_id=manifest_id)
    return deleted


def reconcile_manager(engine: ovirt.Engine, manager) -> None:
    """Cancel, finalize or delete what a dead session left in one engine.

    Transfers go first: a backup can't be finalized nor a snapshot deleted while a
    transfer holds its disk. A real engine doesn't keep a transfer's description,
    so a transfer is also ours when it reads a backup or snapshot that carries our
    tag. Then what dead restore sessions created (disks, VMs) is removed.
    """
    live = live_session_ids()
    leftovers = [(vm_id, *_tagged_objects(engine, vm_id)) for vm_id in _recent_vm_ids(manager)]
    owners = {item.id: ovirt.session_of(item.description)
              for _, backups, snapshots in leftovers for item in (*backups, *snapshots)}
    _reconcile_transfers(engine, manager, live, owners)
    for vm_id, backups, snapshots in leftovers:
        _reconcile_vm(engine, manager, vm_id, live, backups, snapshots)
    _reconcile_restores(engine, manager)


def _tagged_objects(engine: ovirt.Engine, vm_id: str) -> tuple[list, list]:
    try:
        return ovirt.list_backups(engine, vm_id), ovirt.list_snapshots(engine, vm_id)
    except EngineError:
        return [], []  # the VM is gone: nothing of ours can be left on it


def _reconcile_transfers(engine: ovirt.Engine, manager, live: set[str], owners: dict) -> None:
    for transfer in ovirt.list_transfers(engine):
        owner = (ovirt.session_of(transfer.description) or owners.get(transfer.backup_id)
                 or owners.get(transfer.snapshot_id))
        if owner is None or owner in live or transfer.phase in ovirt.TERMINAL_PHASES \
                or transfer.phase in ovirt.ENDING_PHASES:  # ends on its own: the next pass sees it gone
            continue
        _act(manager, owner, transfer.id, ReconcileKind.TRANSFER_CANCELLED,
             f"cancelled image transfer {transfer.id} (phase {transfer.phase}) left by session {owner}.",
             lambda t=transfer: (ovirt.cancel_transfer(engine, t.id),
                                 ovirt.wait_transfer_ended(engine, t.id, timeout=CLEANUP_TIMEOUT)))


def _reconcile_vm(engine: ovirt.Engine, manager, vm_id: str, live: set[str], backups, snapshots) -> None:
    for backup in backups:
        owner = ovirt.session_of(backup.description)
        if owner is None or owner in live or backup.phase in ovirt.BACKUP_TERMINAL_PHASES:
            continue
        _act(manager, owner, backup.id, ReconcileKind.BACKUP_FINALIZED,
             f"finalized backup {backup.id} of VM {vm_id} left by session {owner}.",
             lambda b=backup: (ovirt.finalize_backup(engine, vm_id, b.id),
                               ovirt.wait_backup_done(engine, vm_id, b.id, timeout=CLEANUP_TIMEOUT)))
    for snapshot in snapshots:
        owner = ovirt.session_of(snapshot.description)
        if owner is None or owner in live:
            continue
        _act(manager, owner, snapshot.id, ReconcileKind.SNAPSHOT_DELETED,
             f"deleted snapshot {snapshot.id} of VM {vm_id} left by session {owner}.",
             lambda s=snapshot: (ovirt.delete_snapshot(engine, vm_id, s.id),
                                 ovirt.wait_snapshot_gone(engine, vm_id, s.id, timeout=CLEANUP_TIMEOUT)))


def _reconcile_restores(engine: ovirt.Engine, manager) -> None:
    from jobs.restore.abandoned import clean_abandoned_restores

    for item in clean_abandoned_restores(engine, manager):
        kind = ReconcileKind.RESTORE_CLEANED if item.ok else ReconcileKind.ERROR
        _record(kind, f"{item.message} (left by restore session {item.session_id})",
                session_id=item.session_id, manager=manager, object_id=item.object_id)


def _act(manager, owner: str, object_id: str, kind: str, message: str, action) -> None:
    session_id = int(owner) if owner.isdigit() else None
    if session_id is not None and Session.objects.filter(pk=session_id, state__in=ACTIVE_STATES).exists():
        return  # a session that started after this pass read the live ones: it owns its objects
    try:
        action()
    except EngineError as exc:
        _record(ReconcileKind.ERROR, f"could not clean {object_id} left by session {owner}: {exc}",
                session_id=session_id, manager=manager, object_id=object_id)
        return
    _record(kind, message, session_id=session_id, manager=manager, object_id=object_id)


def _recent_vm_ids(manager) -> list[str]:
    """Engine ids of the manager's VMs that sessions touched lately (where leftovers can be)."""
    since = timezone.now() - timedelta(days=RECENT_DAYS)
    return list(TaskSession.objects.filter(session__created__gte=since, vm__manager=manager)
                .values_list("vm__engine_id", flat=True).distinct())
