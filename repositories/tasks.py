"""Repository work for the control runner (django-q2): verification and garbage collection.

Schedules may call these by name, e.g. ``repositories.tasks.collect_garbage_task``
with the repository's id, on the control cluster.
"""

from django.conf import settings
from django.db import transaction

from repositories.models import Repository


def verify_repository_task(repository_id: int) -> dict:
    """Verify a repository; the record keeps the result and restore points are marked."""
    from repositories.services import verify_repository

    repository = Repository.objects.get(pk=repository_id)
    report = verify_repository(repository)
    return {key: report[key] for key in ("ok", "manifests", "chunks_checked", "affected_manifests")}


def collect_garbage_task(repository_id: int) -> dict:
    """Collect a repository's garbage with the configured grace period."""
    from repositories.services import collect_garbage

    repository = Repository.objects.get(pk=repository_id)
    return collect_garbage(repository, settings.GC_GRACE_HOURS * 3600)


def request_verification(repository: Repository) -> None:
    """Enqueue a verification on the control runner once the current transaction commits."""
    from django_q.tasks import async_task

    transaction.on_commit(lambda: async_task(
        "repositories.tasks.verify_repository_task", repository.pk,
        cluster=settings.Q_CLUSTER["name"], task_name=f"verify repository {repository.pk}",
        group="repositories"))
