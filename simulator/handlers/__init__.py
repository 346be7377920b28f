"""Per-collection handlers of the simulated API; `register_all` fills the route table."""

from simulator.engine import Engine
from simulator.routing import Router


def register_all(router: Router, engine: Engine) -> None:
    """Register the routes of every collection."""
    from simulator.handlers import (
        backups,
        checkpoints,
        disks,
        events,
        inventory,
        snapshots,
        system,
        transfers,
        vms,
    )

    for module in (system, inventory, vms, disks, snapshots, transfers, events, backups,
                   checkpoints):
        module.register(router, engine)
