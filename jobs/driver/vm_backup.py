"""One VM of a backup session, from its lock to its restore point.

The backup API with checkpoints is the main flow; the snapshot flow is used
where the engine has no backup API (or VBR_BACKUP_METHOD=snapshot). Either way
every engine object created is noted in EngineHoldings the moment it exists
and released in ``finally``.
"""

from __future__ import annotations

import logging
from concurrent.futures import Future, ThreadPoolExecutor

from django.conf import settings
from django.utils import timezone

from jobs.choices import BackupType, LogLevel, SessionState
from jobs.driver import disks as disk_tasks
from jobs.driver.cleanup import EngineHoldings
from jobs.driver.context import Cancelled, SessionRun, Skipped, VmFailed
from jobs.driver.plan import BackupPlan, plan_backup
from jobs.driver.restore_points import (
    SessionEnded,
    discard_manifest,
    record_restore_point,
    write_manifest,
)
from jobs.models import TaskSession, VmLock
from plugin import engine as ovirt
from plugin.errors import (
    AuthenticationFailed,
    CertificateNotTrusted,
    Conflict,
    EngineError,
    EngineTimeout,
    EngineUnreachable,
    NotFound,
    OperationFailed,
    WaitAborted,
)
from repositories.datamover.client import DataMoverError
from repositories.services import RepositoryLease
from repositories.store.errors import StoreError

log = logging.getLogger(__name__)


class BackupApiUnavailable(Exception):
    """The engine (or this VM) can't use the backup API: use the snapshot flow."""


class VmBackup:
    """Back up one VM for a session; ``execute()`` returns the VM's end state."""

    def __init__(self, run: SessionRun, vm, repository, task: TaskSession, full_reason: str = ""):
        self.run, self.vm, self.repository, self.task = run, vm, repository, task
        self.full_reason = full_reason
        self.started = timezone.now()
        self.cleanup_problems: list[str] = []
        self.attachments: dict = {}
        self.ovf = ""
        self.writer: ThreadPoolExecutor | None = None  # writes the manifest while the engine finalizes

    def say(self, message: str, level: str = LogLevel.INFO) -> None:
        self.run.session.log(f"{self.vm.name}: {message}", level)

    # The outcome

    def execute(self) -> str:
        self._update(state=SessionState.RUNNING, started=self.started)
        holder = VmLock.acquire(self.vm, self.run.session)
        if holder is not None:
            self.say(f"skipped: the VM is already being backed up by session {holder.pk}.", LogLevel.WARNING)
            return self._finish(SessionState.WARNING, "already in a backup")
        try:
            state, error = self._execute_locked(), ""
        except (Cancelled, WaitAborted):
            self.say("cancelled: no restore point recorded for this VM.", LogLevel.WARNING)
            state, error = SessionState.CANCELLED, "cancelled"
        except Skipped as exc:
            self.say(f"skipped: {exc}", LogLevel.WARNING)
            state, error = SessionState.WARNING, str(exc)
        except (VmFailed, EngineError, DataMoverError, StoreError) as exc:
            self.say(f"failed: {exc}", LogLevel.ERROR)
            state, error = SessionState.FAILED, str(exc)
        except Exception as exc:  # a bug must fail this VM, not the other VMs of the session
            log.exception("backup of VM %s failed", self.vm.name)
            self.say(f"failed unexpectedly: {exc!r}", LogLevel.ERROR)
            state, error = SessionState.FAILED, repr(exc)
        finally:
            VmLock.release(self.vm, self.run.session)
        return self._finish(state, error)

    def _execute_locked(self) -> str:
        with ovirt.pooled_connection(self.vm.manager.credentials(), timeout=self.run.engine_timeout) as engine:
            holdings = EngineHoldings(vm_id=self.vm.engine_id)
            try:
                self._backup(engine, holdings)
            finally:
                self.cleanup_problems = holdings.release(engine, self.say)
        if self.cleanup_problems:
            return SessionState.WARNING
        return SessionState.SUCCESS

    def _finish(self, state: str, error: str) -> str:
        self._update(state=state, finished=timezone.now(), error=error[:2000],
                     **({"progress": 100.0} if state == SessionState.SUCCESS else {}))
        return state

    def _update(self, **fields) -> None:
        TaskSession.objects.filter(pk=self.task.pk).update(**fields)
        for name, value in fields.items():
            setattr(self.task, name, value)

    # The flows

    def _backup(self, engine: ovirt.Engine, holdings: EngineHoldings) -> None:
        disks = self._disks(engine)
        self.ovf = ovirt.get_vm_ovf(engine, self.vm.engine_id)
        plan = plan_backup(engine, self.vm, self.repository, disks, full_reason=self.full_reason)
        self.run.check_cancelled()
        with self._open_lease(plan), ThreadPoolExecutor(1, thread_name_prefix="manifest") as self.writer:
            if settings.VBR_BACKUP_METHOD == "snapshot":
                works, checkpoint_id = self._snapshot_flow(engine, holdings, disks, plan,
                                                           "VBR_BACKUP_METHOD is snapshot")
                early = None
            else:
                try:
                    works, checkpoint_id, early = self._backup_api_flow(engine, holdings, disks, plan)
                except BackupApiUnavailable as exc:
                    works, checkpoint_id = self._snapshot_flow(engine, holdings, disks, plan, str(exc))
                    early = None
            incremental = _incremental(works)
            manifest = early.result() if early is not None else self._write_manifest(works, checkpoint_id, plan)
            try:
                point = record_restore_point(
                    manifest, session=self.run.session, vm=self.vm, repository=self.repository, works=works,
                    checkpoint_id=checkpoint_id, base=plan.base, incremental=incremental)
            except SessionEnded as exc:
                problem = discard_manifest(self.repository, manifest.id)
                raise VmFailed(f"{exc}: no restore point recorded{'; ' + problem if problem else ''}") from None
        self._update(restore_point=point, mode=point.type)
        self.say(f"restore point {point.manifest_id} recorded ({point.type}): read "
                 f"{_mib(point.bytes_read)}, sent {_mib(point.bytes_sent)}, stored {_mib(point.bytes_stored)}.")
        if checkpoint_id:
            self._prune_checkpoints(engine)

    def _prune_checkpoints(self, engine: ovirt.Engine) -> None:
        """Delete the VM's oldest checkpoints no repository's next incremental starts from.

        Each checkpoint is a dirty bitmap in every qcow2 volume of the VM: left
        alone they pile up. The engine only deletes the root (oldest) one, so
        delete from the root until a checkpoint some repository still needs.
        """
        from jobs.choices import RestorePointState
        from jobs.models import RestorePoint

        needed = set()
        for repository_id in (RestorePoint.objects.filter(vm=self.vm).values_list("repository", flat=True)
                              .distinct()):
            points = RestorePoint.objects.filter(vm=self.vm, repository_id=repository_id).order_by("-time", "-pk")
            needed.add(points.values_list("checkpoint_id", flat=True).first())
            # The next incremental starts from the newest usable point, which a verification
            # that marked the newest one corrupted makes an older one.
            needed.add(points.filter(state=RestorePointState.OK).values_list("checkpoint_id", flat=True).first())
        try:
            for checkpoint in ovirt.list_checkpoints(engine, self.vm.engine_id):
                if checkpoint.id in needed:
                    break
                ovirt.delete_checkpoint(engine, self.vm.engine_id, checkpoint.id)
                self.say(f"deleted checkpoint {checkpoint.id}: no repository's next incremental needs it.")
        except EngineError as exc:
            self.say(f"could not delete an old checkpoint: {exc}", LogLevel.WARNING)

    def _disks(self, engine: ovirt.Engine) -> list[ovirt.DiskInfo]:
        info = ovirt.get_vm(engine, self.vm.engine_id)
        self.attachments = {a.disk_id: a for a in info.disk_attachments}
        disks = []
        for attachment in info.disk_attachments:
            disk = ovirt.get_disk(engine, attachment.disk_id)
            if disk.shareable or disk.storage_type == "lun":
                self.say(f"disk {disk.name} is skipped: shareable disks and direct LUNs can't be "
                         "backed up at image level.", LogLevel.WARNING)
                continue
            disks.append(disk)
        if not disks:
            raise Skipped("the VM has no disk that can be backed up")
        return disks

    def _backup_api_flow(self, engine, holdings, disks, plan: BackupPlan):
        backup, plan = self._start_backup(engine, holdings, disks, plan)
        modes = {d.disk_id: d.backup_mode for d in ovirt.list_backup_disks(engine, self.vm.engine_id, backup.id)}
        works = [self._work(d, modes.get(d.id) or plan.mode_of(d.id), plan) for d in disks]
        self._log_engine_fulls(works, plan)
        for work in works:
            transfer = ovirt.create_transfer(engine, direction="download", description=self._tag(),
                                             disk_id=work.disk.id, backup_id=backup.id, format="raw",
                                             inactivity_timeout=ovirt.WORKER_INACTIVITY_SECONDS)
            holdings.transfers[transfer.id] = work.disk.name
            work.transfer_id = transfer.id
        self._move(engine, holdings, works, plan)
        early = self._manifest_meanwhile(works, backup.to_checkpoint_id, plan)
        try:
            self._finalize_transfers(engine, holdings, works)
            ovirt.finalize_backup(engine, self.vm.engine_id, backup.id)
            done = ovirt.wait_backup_done(engine, self.vm.engine_id, backup.id, timeout=self.run.wait_timeout)
            holdings.backup_finalized = True
            if done.phase != "succeeded":
                raise VmFailed(f"the engine ended backup {backup.id} in phase {done.phase}")
        except BaseException:
            self._discard(early)
            raise
        checkpoint_id = backup.to_checkpoint_id or done.to_checkpoint_id
        if checkpoint_id:
            self.say(f"backup {backup.id} finalized; checkpoint {checkpoint_id} is the base of the next incremental.")
        return works, checkpoint_id, early

    # The manifest

    def _write_manifest(self, works, checkpoint_id: str | None, plan: BackupPlan):
        return write_manifest(session=self.run.session, vm=self.vm, repository=self.repository, works=works,
                              ovf=self.ovf, checkpoint_id=checkpoint_id, base=plan.base,
                              incremental=_incremental(works), started=self.started)

    def _manifest_meanwhile(self, works, checkpoint_id: str | None, plan: BackupPlan) -> Future | None:
        """Write the manifest while the engine finalizes (the data is all stored by now); the
        restore point is recorded only once the backup succeeded, its manifest deleted otherwise.

        Not in an immutable repository, where a manifest can't be deleted, nor without the new
        checkpoint's id (an engine that gives it only once finalized).
        """
        if not checkpoint_id or self.repository.immutable_days:
            return None
        return self.writer.submit(self._write_manifest, works, checkpoint_id, plan)

    def _discard(self, early: Future | None) -> None:
        """Delete the manifest written meanwhile for a VM that fails after all."""
        if early is None:
            return
        try:
            manifest = early.result()
        except Exception:  # noqa: BLE001 - nothing was written; the VM's own failure is what counts
            return
        problem = discard_manifest(self.repository, manifest.id)
        if problem:
            self.say(f"{problem}; garbage collection keeps its chunks until it is deleted.", LogLevel.WARNING)

    def _start_backup(self, engine, holdings, disks, plan: BackupPlan):
        """Start the backup and wait for ready; an incremental the engine refuses becomes a full."""
        self._log_plan(plan, {d.id: d.name for d in disks})
        try:
            backup = ovirt.start_backup(engine, self.vm.engine_id, [d.id for d in disks],
                                        description=self._tag(), from_checkpoint_id=plan.from_checkpoint_id)
        except Conflict as exc:
            raise Skipped(f"the engine says the VM is busy (already in a backup?): {exc}") from exc
        except NotFound as exc:
            if plan.incremental:  # the checkpoint may be what the engine can't find
                return self._retry_full(engine, holdings, disks, plan, exc)
            raise BackupApiUnavailable(f"the engine has no backup API for this VM ({exc})") from exc
        except (EngineUnreachable, EngineTimeout, AuthenticationFailed, CertificateNotTrusted):
            # Not the engine refusing the incremental: no reason for a full. The request
            # may have reached it, though: a backup it started is ours to finalize.
            holdings.backup_id = self._started_anyway(engine)
            raise
        except EngineError as exc:
            if not plan.incremental or isinstance(exc, WaitAborted):
                raise
            return self._retry_full(engine, holdings, disks, plan, exc)
        holdings.backup_id = backup.id
        try:
            ready = ovirt.wait_backup_phase(engine, self.vm.engine_id, backup.id, {"ready"},
                                            timeout=self.run.wait_timeout, should_stop=self.run.should_stop)
        except OperationFailed as exc:
            holdings.backup_finalized = True  # a failed backup holds nothing
            if not plan.incremental:
                raise
            return self._retry_full(engine, holdings, disks, plan, exc)
        self.say(f"backup {backup.id} is ready.")
        return ready, plan

    def _started_anyway(self, engine) -> str | None:
        """The id of a backup this VM's session started though the request failed, if any."""
        try:
            return next((b.id for b in ovirt.list_backups(engine, self.vm.engine_id)
                         if b.description == self._tag() and b.phase not in ovirt.BACKUP_TERMINAL_PHASES), None)
        except EngineError:
            return None  # reconcile finds it by its tag once this session has ended

    def _retry_full(self, engine, holdings, disks, plan: BackupPlan, exc: Exception):
        holdings.backup_id, holdings.backup_finalized = None, False
        reason = (f"the engine could not start an incremental backup from checkpoint "
                  f"{plan.from_checkpoint_id} ({exc}); the checkpoint is missing or invalid")
        self.say(f"full backup instead: {reason}.", LogLevel.WARNING)
        return self._start_backup(engine, holdings, disks, plan.full(reason))

    def _snapshot_flow(self, engine, holdings, disks, plan: BackupPlan, why: str):
        self.say(f"using the snapshot flow ({why}): every disk is read in full.")
        snapshot = ovirt.create_snapshot(engine, self.vm.engine_id, self._tag(), [d.id for d in disks])
        holdings.snapshot_id = snapshot.id
        ovirt.wait_snapshot_ready(engine, self.vm.engine_id, snapshot.id, timeout=self.run.wait_timeout,
                                  should_stop=self.run.should_stop)
        images = {d.disk_id: d.image_id for d in ovirt.list_snapshot_disks(engine, self.vm.engine_id, snapshot.id)}
        reason = plan.reason or "the snapshot flow has no checkpoints"
        works = [self._work(d, BackupType.FULL, plan.full(reason)) for d in disks]
        for work in works:
            if work.disk.id not in images:
                raise VmFailed(f"disk {work.disk.name} is missing from snapshot {snapshot.id}")
            transfer = ovirt.create_transfer(engine, direction="download", description=self._tag(),
                                             snapshot_image_id=images[work.disk.id], format="raw",
                                             inactivity_timeout=ovirt.WORKER_INACTIVITY_SECONDS)
            holdings.transfers[transfer.id] = work.disk.name
            work.transfer_id = transfer.id
        self._move(engine, holdings, works, plan)
        self._finalize_transfers(engine, holdings, works)
        return works, None

    def _move(self, engine, holdings: EngineHoldings, works, plan: BackupPlan) -> None:
        """Hand every disk to a worker and follow them until all are stored."""
        try:
            self._hand_over(engine, works, plan)
        except BaseException:
            disk_tasks.stop_tasks(works)  # disks handed over already must not go on alone
            raise
        disk_tasks.follow(self.run, self.task, works, read=lambda work: self._finalize_read(engine, work))

    def _finalize_read(self, engine, work: disk_tasks.DiskWork) -> None:
        """Finalize a transfer whose worker has read the disk and still sends the last blocks:
        the engine's finalize overlaps the sending. A refusal leaves it to _finalize_transfers."""
        try:
            ovirt.finalize_transfer(engine, work.transfer_id)
        except EngineError as exc:
            log.info("finalizing transfer %s early failed (%s): finalizing it later", work.transfer_id, exc)
            return
        work.transfer_finalizing = True

    def _finalize_transfers(self, engine, holdings: EngineHoldings, works) -> None:
        for work in works:
            if not work.transfer_finalizing:
                ovirt.finalize_transfer(engine, work.transfer_id)
            ovirt.wait_transfer_finished(engine, work.transfer_id, work.disk.id, timeout=self.run.wait_timeout,
                                         should_stop=self.run.should_stop)
            holdings.finalized.add(work.transfer_id)

    def _hand_over(self, engine, works, plan: BackupPlan) -> None:
        """Give each disk to a worker at once, and its transfer's URL once the engine has opened it:
        the worker meanwhile takes the task and reads the base restore point's index."""
        for work in works:
            task = disk_tasks.submit(self.run, self.vm, self.repository, work,
                                     plan.base.manifest_id if plan.base else None)
            self.say(f"disk {work.disk.name} ({work.mode}) handed to {task.worker_name}.")
        for work in works:
            transfer = ovirt.wait_transfer_ready(engine, work.transfer_id, timeout=self.run.wait_timeout,
                                                 should_stop=self.run.should_stop)
            disk_tasks.open_transfer(work, transfer.transfer_url or transfer.proxy_url)

    # Helpers

    def _work(self, disk, mode: str, plan: BackupPlan) -> disk_tasks.DiskWork:
        reason = ""
        if mode == BackupType.FULL:
            reason = plan.disk_reasons.get(disk.id) or plan.reason or "the engine chose a full backup"
        attachment = self.attachments.get(disk.id)
        return disk_tasks.DiskWork(disk=disk, mode=mode, reason=reason,
                                   interface=attachment.interface if attachment else "",
                                   bootable=attachment.bootable if attachment else False)

    def _log_plan(self, plan: BackupPlan, names: dict[str, str]) -> None:
        if not plan.incremental:
            self.say(f"full backup: {plan.reason}.")
            self._update(mode=BackupType.FULL, reason=plan.reason)
            return
        self.say(f"incremental backup since checkpoint {plan.from_checkpoint_id} "
                 f"(restore point {plan.base.manifest_id}).")
        for disk_id, why in plan.disk_reasons.items():
            self.say(f"disk {names.get(disk_id, disk_id)} is read in full: {why}.")
        self._update(mode=BackupType.INCREMENTAL, reason="; ".join(plan.disk_reasons.values()))

    def _log_engine_fulls(self, works, plan: BackupPlan) -> None:
        """Say which disks the engine reads in full although the plan was incremental: never a silent full."""
        if not plan.incremental:
            return
        fulls = [w for w in works if w.mode == BackupType.FULL and w.disk.id not in plan.disk_reasons]
        for work in fulls:
            self.say(f"disk {work.disk.name} is read in full: {work.reason}.")
        if fulls:
            reasons = [*plan.disk_reasons.values(), *(w.reason for w in fulls)]
            self._update(reason="; ".join(dict.fromkeys(reasons)))

    def _tag(self) -> str:
        return ovirt.description_tag(self.run.session.pk, f"backup of {self.vm.name}")

    def _open_lease(self, plan: BackupPlan) -> RepositoryLease:
        """Keep garbage collection off the chunks in flight and the base restore point."""
        try:
            return RepositoryLease.open(
                self.repository, f"session {self.run.session.pk} {self.vm.name}",
                [plan.base.manifest_id] if plan.base else [], ttl=settings.TASK_TIMEOUT,
                warn=lambda message: self.say(message, LogLevel.WARNING))
        except DataMoverError as exc:
            raise VmFailed(f"the repository {self.repository.name} can't be reached: {exc}") from exc


def _mib(n: int) -> str:
    return f"{n / 1048576:.1f} MiB"


def _incremental(works) -> bool:
    return any(w.mode == BackupType.INCREMENTAL for w in works)
