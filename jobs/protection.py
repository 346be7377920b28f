"""Which VMs are protected: the hook inventory.protection calls for its pages, and the dashboard's.

A VM is protected when it has a restore point in state ok. ``state`` says how
its last backup went: "ok" (protected), "warning" or "failed" when the last
VM task of a session ended so. A VM an in-place restore re-created (the engine
gave it a new id) keeps the restore points and backups of the VM it replaced
on its manager (ReplacedVm), once that restore has ended: it is protected by them
until its own first backup.
"""

from __future__ import annotations

from django.db.models import Exists, F, OuterRef, Q

from jobs.choices import RestorePointState, SessionKind, SessionState
from jobs.models import ReplacedVm, RestorePoint, TaskSession


def has_good_restore_point() -> Q:
    """A filter on inventory VMs: those with a restore point in state ok, their own or one taken
    before an in-place restore re-created them."""
    good = RestorePoint.objects.filter(state=RestorePointState.OK)
    earlier = ReplacedVm.objects.settled().filter(manager=OuterRef("manager"), engine_id=OuterRef("engine_id")).filter(
        Exists(good.filter(vm__manager=OuterRef("manager"), vm_engine_id=OuterRef("old_engine_id"))))
    return Q(Exists(good.filter(vm=OuterRef("pk")))) | Q(Exists(earlier))


def protection_for_vms(vms: list) -> dict[int, dict]:
    """Protection of each VM by primary key (VMs without a restore point are left out)."""
    links = _Links(vms)
    points = (RestorePoint.objects.filter(Q(vm_id__in=links.pks) | Q(vm_engine_id__in=links.old_ids),
                                          state=RestorePointState.OK)
              .annotate(vm_manager_id=F("vm__manager_id")).select_related("job").order_by("-time", "-pk"))
    latest: dict[int, RestorePoint] = {}
    for point in points:
        for vm_id in links.vms_of(point.vm_id, point.vm_manager_id, point.vm_engine_id):
            latest.setdefault(vm_id, point)
    tasks = (TaskSession.objects.filter(Q(vm_id__in=latest.keys()) | Q(vm__engine_id__in=links.old_ids),
                                        finished__isnull=False,
                                        session__kind=SessionKind.BACKUP)  # a restore isn't a backup
             .order_by("-finished").values("vm_id", "vm__manager_id", "vm__engine_id", "state"))
    last_state: dict[int, str] = {}
    for task in tasks:
        for vm_id in links.vms_of(task["vm_id"], task["vm__manager_id"], task["vm__engine_id"]):
            last_state.setdefault(vm_id, task["state"])
    result = {}
    for vm_id, point in latest.items():
        state = last_state.get(vm_id, SessionState.SUCCESS)
        result[vm_id] = {
            "state": "ok" if state == SessionState.SUCCESS else state,
            "last_restore_point": point.pk,
            "last_restore_point_time": point.time,
            "last_job": point.job.name if point.job else "",
            "last_job_url": point.job.get_absolute_url() if point.job else "",
            "last_session_state": state,
        }
    return result


class _Links:
    """The VMs asked about, and the engine ids they had on their manager before in-place restores
    re-created them."""

    def __init__(self, vms: list):
        self.pks = {vm.pk for vm in vms}
        self.by_key = {(vm.manager_id, vm.engine_id): vm.pk for vm in vms}
        # (manager, old engine id) -> engine id now, for the VMs asked about
        self.earlier = ReplacedVm.objects.settled().earlier_ids(self.by_key)
        self.old_ids = {old for _, old in self.earlier}

    def vms_of(self, vm_id: int | None, manager_id: int | None, engine_id: str | None) -> set[int]:
        """The VMs asked about that a record of inventory row ``vm_id`` (engine id ``engine_id`` on
        the manager) belongs to: that row itself, and the VM that replaced it there."""
        owners = {vm_id} & self.pks
        now = self.by_key.get((manager_id, self.earlier.get((manager_id, engine_id))))
        return owners | ({now} if now is not None else set())
