"""Applying a job's retention: delete the manifests of restore points the policy lets go, then their rows."""

from __future__ import annotations

from collections import defaultdict

from django.utils import timezone

from jobs.choices import LogLevel, RetentionKind
from jobs.models import BackupJob, RestorePoint, Session
from repositories.datamover.client import DataMoverError, NotFound
from repositories.retention import RetentionPolicy, plan_retention
from vbrsite.times import stamp


def policy_of(job: BackupJob) -> RetentionPolicy:
    """The job's retention as the repositories' pure policy."""
    points = job.retain if job.retention_kind == RetentionKind.POINTS else None
    days = job.retain if job.retention_kind == RetentionKind.DAYS else None
    return RetentionPolicy(restore_points=points, days=days, weekly=job.gfs_weekly,
                           monthly=job.gfs_monthly, yearly=job.gfs_yearly,
                           immutable_days=job.repository.immutable_days)


def apply_job_retention(job: BackupJob, session: Session | None = None, say=None) -> list[RestorePoint]:
    """Delete the job's restore points its policy no longer keeps; the ones deleted.

    Each VM's restore points in the job's repository form one group, those taken before an
    in-place restore re-created it included. A manifest the data mover refuses to delete
    (still immutable) stays, row and all.
    """
    if say is None:
        say = session.log if session is not None else (lambda message, level=LogLevel.INFO: None)
    groups: dict = defaultdict(list)
    points = {p.pk: p for p in RestorePoint.objects.filter(job=job, repository=job.repository)
              .with_vm_key()}
    for point in points.values():
        # One group per VM as the engine knows it now (an in-place restore gives it a new id);
        # local time: GFS weeks, months and years begin at the administrators' midnight.
        groups[point.vm_key].append((point.pk, timezone.localtime(point.time)))
    doomed = plan_retention(groups, policy_of(job), timezone.localtime())
    deleted = []
    if not doomed:
        return deleted
    with job.repository.client() as client:
        for point_id in doomed:
            point = points[point_id]
            try:
                client.delete_manifest(point.manifest_id)
            except NotFound:
                pass  # gone already: the row goes too
            except DataMoverError as exc:
                say(f"Retention kept restore point {point.manifest_id} of {point.vm_name} "
                    f"({stamp(point.time)}): {exc}", LogLevel.WARNING)
                continue
            point.delete()
            deleted.append(point)
            say(f"Retention deleted restore point {point.manifest_id} of {point.vm_name} "
                f"({stamp(point.time)}).")
    return deleted
