"""Driving one session: claim it, back up its VMs in parallel, end it in the worst VM's state."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

from django.db import connection
from django.db.models import Max

from jobs.choices import DONE_STATES, BackupType, LogLevel, SessionKind, SessionState, worst_state
from jobs.driver.context import SessionRun
from jobs.driver.heartbeat import Heartbeat, session_figures
from jobs.models import ReplacedVm, RestorePoint, Session, TaskSession
from jobs.models.replaced_vms import current_vm_engine_id

log = logging.getLogger(__name__)


def drive(session_id: int) -> str:
    """Run a pending session to its end; a one-line summary (the django-q2 task result)."""
    session = Session.objects.select_related("job", "job__repository").filter(pk=session_id).first()
    if session is None:
        return f"session {session_id} does not exist"
    if not session.start():
        return f"session {session_id} is {session.state}: not started again"
    if session.kind == SessionKind.RESTORE:
        state, summary = _run_restore(session)
    else:
        state, summary = _run_backup_session(session)
    if not session.terminate(state, summary):
        # Reconcile took it for dead meanwhile (a heartbeat stalled too long): its verdict
        # and its mail stand; say what the driver found, once.
        session.warn(f"The driver ended after reconcile had failed this session: {summary}")
        return f"{state} (after reconcile): {summary}"
    session.log(f"Session ended: {SessionState(state).label}. {summary}",
                LogLevel.ERROR if state == SessionState.FAILED else LogLevel.INFO)
    from jobs.notifications import notify_session_end

    notify_session_end(session)
    return f"{state}: {summary}"


def _run_backup_session(session: Session) -> tuple[str, str]:
    run = SessionRun(session)
    heartbeat = Heartbeat(run)
    heartbeat.start()
    try:
        state, summary = run_backup(run)
    except Exception as exc:  # the session must end, whatever the bug
        log.exception("session %s failed", session.pk)
        session.error(f"The session failed: {exc!r}")
        state, summary = SessionState.FAILED, f"failed: {exc}"
    finally:
        heartbeat.stop()
    late_cancel = session.beat(**session_figures(session.pk)) and not run.cancelled.is_set()
    if run.cancelled.is_set() and state == SessionState.SUCCESS:
        state = SessionState.CANCELLED
    elif late_cancel:
        session.log("The cancel came after every VM had finished: nothing was stopped, the restore "
                    "points stay.")
    return state, summary


def _run_restore(session: Session) -> tuple[str, str]:
    """Restore sessions are driven by jobs.restore (issue 9); it beats and logs on its own."""
    try:
        from jobs.restore.driver import run_restore_session

        return run_restore_session(session)
    except Exception as exc:
        log.exception("restore session %s failed", session.pk)
        session.error(f"The restore failed: {exc!r}")
        return SessionState.FAILED, f"failed: {exc}"


def targets(session: Session, chosen: list[tuple] | None = None):
    """The repository and VMs of a backup session (a job's, resolved now, or the session's own)."""
    from inventory.models import VM
    from repositories.models import Repository

    repository = session.backup_repository()
    if session.job is not None:
        return repository, session.job.resolve_vms(chosen)
    if repository is None:
        raise Repository.DoesNotExist(f"the repository session {session.pk} backs up to was deleted")
    vms = list(VM.objects.filter(pk__in=session.options.get("vm_ids", []))
               .select_related("manager", "cluster").defer("manager__password").order_by("name"))
    return repository, vms


def run_backup(run: SessionRun) -> tuple[str, str]:
    session = run.session
    chosen = _chosen_now(session)
    gone = _follow_chosen_vms(session, chosen) if chosen is not None else []  # VMs chosen by name only
    repository, vms = targets(session, chosen)
    if not vms:
        session.warn("The job selects no VMs right now: nothing to back up.")
        return SessionState.WARNING, "no VMs selected"
    parallel = max(1, session.job.parallel_vms if session.job else 1)
    session.log(f"Backing up {len(vms)} VM(s) to repository {repository.name}, {parallel} at a time.")
    tasks = [TaskSession.objects.create(session=session, vm=vm, vm_name=vm.name) for vm in vms]
    if parallel == 1:  # one VM at a time: here, on this thread's database connection
        states = [_backup_vm(run, repository, vm, task, own_connection=False)
                  for vm, task in zip(vms, tasks, strict=True)]
    else:
        with ThreadPoolExecutor(max_workers=parallel, thread_name_prefix=f"session-{session.pk}") as pool:
            states = list(pool.map(lambda pair: _backup_vm(run, repository, *pair), zip(vms, tasks, strict=True)))
    if session.job is not None and SessionState.SUCCESS in states:
        from jobs.driver.retention import apply_job_retention

        apply_job_retention(session.job, session)
    counts = {s: states.count(s) for s in dict.fromkeys(states)}
    summary = f"{len(states)} VM(s): " + ", ".join(f"{n} {SessionState(s).label.lower()}"
                                                  for s, n in counts.items())
    if gone:
        summary += f"; {len(gone)} chosen VM(s) gone from the engine"
        states.append(SessionState.WARNING)  # not a silent success: one of them is unprotected now
    return worst_state(states), summary


def _chosen_now(session: Session) -> list[tuple] | None:
    """A job's VMs chosen by name as the engine has them now, looked up once per session."""
    from jobs.choices import VmSelection

    job = session.job
    return job.chosen_vms_now() if job is not None and job.selection == VmSelection.EXPLICIT else None


def _follow_chosen_vms(session: Session, chosen: list[tuple] | None = None) -> list:
    """Back up, instead of each chosen VM an in-place restore re-created, the VM in its place;
    warn of the chosen VMs gone from the engine (returned)."""
    for old, new in session.job.follow_replaced_vms(chosen):
        session.log(f"VM {old.name}, chosen in this job, was re-created by an in-place restore with a new "
                    f"engine id ({new.engine_id}, was {old.engine_id}): the job backs it up from now on.")
    gone = session.job.chosen_vms_gone(chosen)
    for vm in gone:
        session.warn(f"VM {vm.name}, chosen in this job, {_why_gone(vm)}")
    return gone


def _why_gone(vm) -> str:
    """Why a chosen VM the inventory has as removed is not backed up, and what to do."""
    from inventory.models import VM

    restoring = ReplacedVm.objects.restoring().filter(manager_id=vm.manager_id, old_engine_id=vm.engine_id).first()
    if restoring is not None:
        return (f"is being restored in place (as {restoring.engine_id}): the job backs the restored VM up "
                "from its first run after that restore has ended.")
    now = current_vm_engine_id(vm.engine_id, vm.manager_id)
    if now == vm.engine_id:
        return "is gone from the engine (deleted, or re-created by hand with a new id): choose it again in the job."
    if VM.objects.filter(manager_id=vm.manager_id, engine_id=now).exists():  # a row, but removed
        return (f"was re-created by an in-place restore with a new engine id ({now}), and that VM was "
                "deleted from the engine since: choose it again in the job.")
    return (f"was re-created by an in-place restore with a new engine id ({now}) that the inventory "
            f"doesn't have yet: sync manager {vm.manager.name}; the job backs it up once the inventory has it.")


def _backup_vm(run: SessionRun, repository, vm, task: TaskSession, own_connection: bool = True) -> str:
    """One VM; in a thread of the pool, on its own database connection, closed at the end."""
    from jobs.driver.vm_backup import VmBackup

    try:
        if run.cancelled.is_set():
            TaskSession.objects.filter(pk=task.pk).update(state=SessionState.CANCELLED, error="cancelled")
            return SessionState.CANCELLED
        return VmBackup(run, vm, repository, task, full_reason=_full_reason(run.session, vm, repository)).execute()
    finally:
        if own_connection:
            connection.close()


def _full_reason(session: Session, vm, repository) -> str:
    """Why this VM must get a full whatever its checkpoints say: asked for, or an active full due."""
    if session.full:
        return "a full backup was requested"
    if session.job is None:
        return ""
    # The session's start decides for every VM: a VM of a later wave that starts after
    # midnight must not miss the full its job's weekday asked for.
    return session.job.active_full_due(last_full_of(vm, repository), now=session.started)


def last_full_of(vm, repository) -> datetime | None:
    """When the VM last got a full backup in the repository.

    From the restore points, and from the sessions: retention deletes old
    restore points (each is a synthetic full, so the full itself goes too), and
    "a full every N days" must not stop then.
    """
    point = (RestorePoint.objects.filter(vm=vm, repository=repository, type=BackupType.FULL)
             .aggregate(last=Max("time"))["last"])
    # error="": a VM skipped (busy) or failed was planned full but never backed up.
    task = (TaskSession.objects.filter(vm=vm, restore_point__isnull=True, mode=BackupType.FULL, error="",
                                       state__in=DONE_STATES, session__job__repository=repository)
            .aggregate(last=Max("started"))["last"])
    return max((t for t in (point, task) if t is not None), default=None)
