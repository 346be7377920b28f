"""Incremental backups and checkpoints (issue 4)."""

from simulator.engine import Engine
from simulator.errors import not_found
from simulator.routing import Router


def register(router: Router, engine: Engine) -> None:
    """Routes of backups and checkpoints."""


def checkpoint_fault(engine: Engine, data: dict) -> dict:
    """Invalidate a checkpoint or remove its bitmaps, as a host crash would."""
    raise not_found("checkpoint")


def validate_backup_transfer(engine: Engine, backup: dict, disk: dict, direction: str,
                             fmt: str) -> None:
    """Refuse transfers a backup can't serve."""
    raise not_found("backup")


def backup_export(engine: Engine, transfer: dict, disk: dict) -> tuple:
    """(volume path, format, dirty bitmap) of a backup transfer."""
    raise not_found("backup")
