"""Full or incremental, and why: never a silent full.

An incremental needs the VM's last restore point in this repository, its
checkpoint still known and valid in the engine, and a disk that can carry a
dirty bitmap (qcow2 with incremental backup enabled) and was in that restore
point. Anything else gives a full, and the reason goes into the session log.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from jobs.choices import BackupType, RestorePointState
from jobs.models import ReplacedVm, RestorePoint
from plugin import engine as ovirt
from plugin.errors import NotFound
from vbrsite.times import stamp


@dataclass
class BackupPlan:
    """The decision for one VM: the checkpoint to start from (None: full) and the reasons."""

    base: RestorePoint | None = None
    from_checkpoint_id: str | None = None
    reason: str = ""  # why the whole VM gets a full
    disk_reasons: dict[str, str] = field(default_factory=dict)  # disk id -> why this disk is full

    @property
    def incremental(self) -> bool:
        return self.from_checkpoint_id is not None

    def mode_of(self, disk_id: str) -> str:
        """What we expect for a disk (the engine's backup_mode has the last word)."""
        if not self.incremental or disk_id in self.disk_reasons:
            return BackupType.FULL
        return BackupType.INCREMENTAL

    def full(self, reason: str) -> BackupPlan:
        """The same VM, now planned as a full for ``reason``."""
        return BackupPlan(base=self.base, from_checkpoint_id=None, reason=reason)


def last_restore_point(vm, repository) -> RestorePoint | None:
    """The VM's newest usable restore point in the repository."""
    return (RestorePoint.objects.filter(vm=vm, repository=repository, state=RestorePointState.OK)
            .order_by("-time", "-pk").first())


def plan_backup(engine: ovirt.Engine, vm, repository, disks: list[ovirt.DiskInfo], *,
                full_reason: str = "") -> BackupPlan:
    """Decide full or incremental for the VM; ``full_reason`` forces a full (asked, or due)."""
    base = last_restore_point(vm, repository)
    plan = BackupPlan(base=base)
    if full_reason:
        return plan.full(full_reason)
    if base is None:
        return plan.full(_first_backup_reason(vm, repository))
    if not base.checkpoint_id:
        return plan.full(f"the last restore point ({stamp(base.time)}) has no checkpoint "
                         "(it was made from a snapshot or of raw disks only)")
    try:
        checkpoints = {c.id: c for c in ovirt.list_checkpoints(engine, vm.engine_id)}
    except NotFound:
        return plan.full("the engine has no checkpoints for this VM (no incremental backup API)")
    checkpoint = checkpoints.get(base.checkpoint_id)
    if checkpoint is None:
        return plan.full(f"checkpoint {base.checkpoint_id} of the last restore point no longer "
                         "exists in the engine")
    if checkpoint.state and checkpoint.state not in ("created", "ok"):
        return plan.full(f"checkpoint {base.checkpoint_id} of the last restore point is "
                         f"{checkpoint.state} in the engine")
    plan.from_checkpoint_id = base.checkpoint_id
    known = {d["id"] for d in base.disks}
    for disk in disks:
        reason = _disk_full_reason(disk, known, checkpoint)
        if reason:
            plan.disk_reasons[disk.id] = reason
    if len(plan.disk_reasons) == len(disks):
        return plan.full("no disk can be backed up incrementally: " + "; ".join(
            f"{d.name}: {plan.disk_reasons[d.id]}" for d in disks))
    return plan


def _first_backup_reason(vm, repository) -> str:
    """Why a VM with no restore point of its own in the repository gets a full."""
    earlier = ReplacedVm.objects.settled().filter(manager_id=vm.manager_id, engine_id=vm.engine_id)
    replaced = earlier.order_by("-time").first()
    if replaced is not None and RestorePoint.objects.filter(
            repository=repository, vm__manager_id=vm.manager_id,
            vm_engine_id__in=earlier.values("old_engine_id")).exists():
        # Its restore points from before are its own, but the checkpoints went with the old VM.
        session = f" (session {replaced.session_id})" if replaced.session_id else ""
        return (f"an in-place restore{session} re-created the VM with a new engine id ({vm.engine_id}, "
                f"was {replaced.old_engine_id}): the engine has no checkpoint of the new VM to start "
                "an incremental from")
    return f"there is no earlier restore point of this VM in repository {repository.name}"


def _disk_full_reason(disk: ovirt.DiskInfo, known: set[str], checkpoint: ovirt.CheckpointInfo) -> str:
    if disk.format == "raw":
        return "the disk is raw (raw disks have no dirty bitmap: always full)"
    if not disk.backup_incremental:
        return "incremental backup is not enabled on the disk"
    if disk.id not in known:
        return "the disk is new since the last restore point"
    if checkpoint.disk_ids and disk.id not in checkpoint.disk_ids:
        return f"the disk is not in checkpoint {checkpoint.id}"
    return ""
