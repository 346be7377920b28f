"""What pages, commands and tasks do with managers: test a connection, ask for a sync."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from inventory.choices import ManagerState
from inventory.models import Manager
from plugin import engine as ovirt

# A sync request older than this with no outcome is taken as lost (runner died)
# and may be made again.
STALE_SYNC_REQUEST = timedelta(minutes=30)


def test_connection(credentials: ovirt.ManagerCredentials) -> ovirt.ApiInfo:
    """Log in to the engine and read its product and version; EngineError says what is wrong."""
    with ovirt.connect(credentials, timeout=settings.VBR_ENGINE_TIMEOUT) as conn:
        return ovirt.api_info(conn)


def request_sync(manager: Manager) -> bool:
    """Mark the manager syncing and enqueue its sync on the control runner, once.

    False when a sync is already requested or running (and not stale).
    """
    now = timezone.now()
    claimed = Manager.objects.filter(pk=manager.pk).filter(
        ~Q(state=ManagerState.SYNCING) | Q(sync_requested_at__isnull=True)
        | Q(sync_requested_at__lt=now - STALE_SYNC_REQUEST)
    ).update(state=ManagerState.SYNCING, sync_requested_at=now)
    if not claimed:
        return False
    manager.state, manager.sync_requested_at = ManagerState.SYNCING, now
    transaction.on_commit(lambda: enqueue_sync(manager.pk))
    return True


def enqueue_sync(manager_id: int) -> None:
    """Send the sync task of one manager to the control runner."""
    from django_q.tasks import async_task

    async_task("inventory.tasks.sync_manager_task", manager_id, cluster=settings.Q_CLUSTER["name"],
               task_name=f"inventory sync {manager_id}", group="inventory")
