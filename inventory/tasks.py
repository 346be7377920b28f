"""django-q2 tasks of the inventory (run by the control runner)."""

from __future__ import annotations

import logging

from inventory.models import Manager
from inventory.sync import sync_manager
from plugin.errors import EngineError

log = logging.getLogger(__name__)


def sync_manager_task(manager_id: int) -> str:
    """Sync one manager; the outcome is recorded on the manager (state, last error)."""
    manager = Manager.objects.filter(pk=manager_id).first()
    if manager is None:
        return "manager deleted"
    try:
        return sync_manager(manager).summary()
    except EngineError as exc:
        return f"failed: {exc}"


def sync_all_managers() -> str:
    """Sync every manager in turn (the periodic schedule); one failing doesn't stop the others."""
    outcomes = []
    for manager in Manager.objects.order_by("name"):
        outcomes.append(f"{manager.name}: {sync_manager_task(manager.pk)}")
    return "\n".join(outcomes) or "no managers"
