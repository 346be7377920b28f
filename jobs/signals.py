"""Keep each job's django-q2 Schedule in step with the job, mark restore points as verification
finds them, link VMs restored in place once a sync sees their original gone, and reconcile when a
control runner starts."""

from __future__ import annotations

import logging

from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from inventory.signals import inventory_stored
from jobs.choices import RestorePointState
from jobs.models import BackupJob, RestorePoint
from repositories.signals import repository_verified

log = logging.getLogger(__name__)


@receiver(post_save, sender=BackupJob)
def job_saved(sender, instance: BackupJob, **kwargs) -> None:
    from jobs.scheduling import sync_schedule

    sync_schedule(instance)


@receiver(post_delete, sender=BackupJob)
def job_deleted(sender, instance: BackupJob, **kwargs) -> None:
    from jobs.scheduling import remove_schedule

    remove_schedule(instance.pk)


@receiver(repository_verified, dispatch_uid="jobs.restore_points_verified")
def repository_verified_marks_restore_points(sender, repository, report: dict, **kwargs) -> None:
    """Damaged restore points become "corrupted", the others "ok" again.

    A corrupted one no longer protects its VM, and the next incremental doesn't
    build on it (the plan takes the newest ok restore point as its base).
    """
    affected = set(report.get("affected_manifests") or [])
    points = RestorePoint.objects.filter(repository=repository)
    points.filter(manifest_id__in=affected).update(state=RestorePointState.CORRUPTED)
    points.exclude(manifest_id__in=affected).update(state=RestorePointState.OK)


def runner_spawned(sender, proc_name: str = "", **kwargs) -> None:
    """A control runner's worker process started: fail the sessions whose driver died with it."""
    from django.conf import settings
    from django_q.conf import Conf

    if settings.Q_CLUSTER["name"] != Conf.CLUSTER_NAME:
        return  # worker runners don't drive sessions
    try:
        from jobs.reconcile import reconcile_at_start

        reconcile_at_start()
    except Exception:  # a runner must start even when reconcile can't run now
        log.exception("reconcile at runner start failed")


@receiver(inventory_stored, dispatch_uid="jobs.link_originals_gone")
def inventory_stored_links_replaced_vms(sender, manager, result, **kwargs) -> None:
    """An in-place restore that gave up waiting for the original to go never linked the VM in
    its place: once the inventory sees the original removed, link it, as the restore would have."""
    from jobs.models.replaced_vms import link_originals_gone

    try:
        for link in link_originals_gone(manager.pk):
            log.info("linked %s, removed after its in-place restore ended", link)
    except Exception:  # a link can wait for the next sync; the sync itself must not fail
        log.exception("linking VMs restored in place on manager %s failed", manager.pk)
