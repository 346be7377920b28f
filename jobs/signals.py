"""Keep each job's django-q2 Schedule in step with the job, and reconcile when a control runner starts."""

from __future__ import annotations

import logging

from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from jobs.models import BackupJob

log = logging.getLogger(__name__)


@receiver(post_save, sender=BackupJob)
def job_saved(sender, instance: BackupJob, **kwargs) -> None:
    from jobs.scheduling import sync_schedule

    sync_schedule(instance)


@receiver(post_delete, sender=BackupJob)
def job_deleted(sender, instance: BackupJob, **kwargs) -> None:
    from jobs.scheduling import remove_schedule

    remove_schedule(instance.pk)


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
