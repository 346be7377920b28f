"""Which VMs are protected: the hook inventory.protection calls for its pages.

A VM is protected when it has a restore point in state ok. ``state`` says how
its last backup went: "ok" (protected), "warning" or "failed" when the last
VM task of a session ended so.
"""

from __future__ import annotations

from jobs.choices import RestorePointState, SessionKind, SessionState
from jobs.models import RestorePoint, TaskSession


def protection_for_vms(vms: list) -> dict[int, dict]:
    """Protection of each VM by primary key (VMs without a restore point are left out)."""
    ids = [vm.pk for vm in vms]
    points = (RestorePoint.objects.filter(vm_id__in=ids, state=RestorePointState.OK)
              .select_related("job").order_by("vm_id", "-time"))
    latest: dict[int, RestorePoint] = {}
    for point in points:
        latest.setdefault(point.vm_id, point)
    tasks = (TaskSession.objects.filter(vm_id__in=latest.keys(), finished__isnull=False,
                                        session__kind=SessionKind.BACKUP)  # a restore isn't a backup
             .order_by("vm_id", "-finished").values("vm_id", "state"))
    last_state: dict[int, str] = {}
    for task in tasks:
        last_state.setdefault(task["vm_id"], task["state"])
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
