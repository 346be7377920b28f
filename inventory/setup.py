"""Set up the demo: the simulator registered and synced as a manager on first start."""

from __future__ import annotations

import logging
from pathlib import Path

from inventory.models import Manager
from inventory.sync import sync_manager
from plugin.errors import EngineError

log = logging.getLogger(__name__)

DEMO_MANAGER_NAME = "demo"


def ensure_demo_manager(url: str, ca_file: str | Path, password: str,
                        username: str = "admin@internal") -> Manager:
    """Register the simulator at ``url`` as the manager "demo" (or update it) and sync it now.

    A failed sync is recorded on the manager and logged, not raised, so the
    rest of the first start goes on; the page shows what is wrong.
    """
    manager, _ = Manager.objects.get_or_create(name=DEMO_MANAGER_NAME, defaults={"url": url})
    manager.url = url
    manager.username = username
    manager.password = password
    manager.ca_certificate = Path(ca_file).read_text()
    manager.save()
    try:
        sync_manager(manager)
    except EngineError as exc:
        log.warning("The demo manager could not be synced: %s", exc)
    manager.refresh_from_db()
    return manager
