"""Retention: which restore points to delete, as a pure function of their times.

The policy applies to each (VM, job) group separately. Kept are: the last N
restore points or those of the last N days; with GFS, the newest restore point
of each of the last W weeks, M months and Y years; always the newest one; and
never anything younger than the repository's immutability period.

Hook for the jobs app (``apply_retention [JOB]``): group the job's RestorePoint
rows by VM as ``{vm: [(restore_point_id, time), ...]}``, call
:func:`plan_retention`, then for each id returned delete the manifest through
``repository.client().delete_manifest(manifest_id)`` (the data mover refuses,
with 403, a restore point that is still immutable) and only then the row.
Garbage collection later frees the chunks no other restore point uses.
"""

from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class RetentionPolicy:
    """How many restore points a job keeps per VM."""

    restore_points: int | None = None
    days: int | None = None
    weekly: int = 0
    monthly: int = 0
    yearly: int = 0
    immutable_days: int = 0

    def __post_init__(self):
        for name in ("restore_points", "days", "weekly", "monthly", "yearly", "immutable_days"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"retention {name} can't be negative")


def _newest_per_period(points: Sequence[tuple[Hashable, datetime]], count: int,
                       period) -> set[Hashable]:
    """The newest restore point of each of the ``count`` most recent periods that have one."""
    kept: dict = {}
    for point_id, time in points:  # newest first
        key = period(time)
        if key not in kept:
            if len(kept) == count:
                break
            kept[key] = point_id
    return set(kept.values())


def restore_points_to_delete(points: Iterable[tuple[Hashable, datetime]], policy: RetentionPolicy,
                             now: datetime) -> list[Hashable]:
    """The ids to delete among one VM's restore points in one job, oldest first."""
    ordered = sorted(points, key=lambda p: p[1], reverse=True)
    if not ordered or (policy.restore_points is None and policy.days is None):
        return []
    keep = {ordered[0][0]}
    if policy.restore_points is not None:
        keep |= {point_id for point_id, _ in ordered[:policy.restore_points]}
    if policy.days is not None:
        since = now - timedelta(days=policy.days)
        keep |= {point_id for point_id, time in ordered if time >= since}
    if policy.weekly:
        keep |= _newest_per_period(ordered, policy.weekly, lambda t: t.isocalendar()[:2])
    if policy.monthly:
        keep |= _newest_per_period(ordered, policy.monthly, lambda t: (t.year, t.month))
    if policy.yearly:
        keep |= _newest_per_period(ordered, policy.yearly, lambda t: t.year)
    immutable_since = now - timedelta(days=policy.immutable_days)
    keep |= {point_id for point_id, time in ordered if time > immutable_since}
    return [point_id for point_id, _ in reversed(ordered) if point_id not in keep]


def plan_retention(groups: Mapping[Hashable, Iterable[tuple[Hashable, datetime]]],
                   policy: RetentionPolicy, now: datetime) -> list[Hashable]:
    """The ids to delete across groups (one group per VM and job)."""
    return [point_id for points in groups.values()
            for point_id in restore_points_to_delete(points, policy, now)]
