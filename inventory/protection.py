"""The hook through which the jobs app tells the inventory which VMs are protected.

The inventory pages call ``protection_for(vms)``. Until the jobs app provides
``jobs.protection.protection_for_vms(vms) -> dict[vm_pk, dict]`` (keys it may
fill: ``state``, ``last_restore_point``, ``last_restore_point_time``,
``last_job``, ``last_job_url``, ``last_session_state``), every VM shows
"not protected" from the template block ``protection`` in
templates/inventory/vm_protection.html.
"""

from __future__ import annotations

from collections.abc import Iterable


def protection_for(vms: Iterable) -> dict[int, dict]:
    """Protection state of each VM by primary key; VMs missing from the dict are not protected."""
    try:
        from jobs.protection import protection_for_vms
    except ModuleNotFoundError as exc:
        if exc.name != "jobs.protection":
            raise
        return {}
    return protection_for_vms(list(vms))
