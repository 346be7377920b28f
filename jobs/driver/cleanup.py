"""What a VM's backup holds in the engine, and releasing it whatever happened.

Every transfer, backup and snapshot the driver creates is noted here the moment
the engine returns its id; ``release()`` (called from ``finally``) cancels the
transfers not finalized, finalizes the backup, and deletes the snapshot. Each
step is tried on its own, so one failing doesn't leave the others behind.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from plugin import engine as ovirt
from plugin.errors import EngineError

log = logging.getLogger(__name__)

CLEANUP_TIMEOUT = 120.0


@dataclass
class EngineHoldings:
    """The engine objects one VM's backup holds right now."""

    vm_id: str
    transfers: dict[str, str] = field(default_factory=dict)  # transfer id -> disk name (for the log)
    finalized: set[str] = field(default_factory=set)
    backup_id: str | None = None
    backup_finalized: bool = False
    snapshot_id: str | None = None

    def release(self, engine: ovirt.Engine, say) -> list[str]:
        """Give back everything still held; ``say(message, level)`` logs to the session.

        Returns the problems met (empty when the engine is clean).
        """
        problems: list[str] = []
        for transfer_id, disk_name in list(self.transfers.items()):
            if transfer_id not in self.finalized:
                self._cancel_transfer(engine, transfer_id, disk_name, say, problems)
        if self.backup_id and not self.backup_finalized:
            self._finalize_backup(engine, say, problems)
        if self.snapshot_id:
            self._delete_snapshot(engine, say, problems)
        return problems

    def _cancel_transfer(self, engine, transfer_id: str, disk_name: str, say, problems: list) -> None:
        try:
            cancelled = ovirt.cancel_transfer(engine, transfer_id)
            phase = ovirt.wait_transfer_ended(engine, transfer_id, timeout=CLEANUP_TIMEOUT)
            self.finalized.add(transfer_id)
            say(f"Cancelled image transfer {transfer_id} of disk {disk_name}." if cancelled else
                f"Image transfer {transfer_id} of disk {disk_name} was ending already: it ended "
                f"({phase.replace('_', ' ')}).", "info")
        except EngineError as exc:
            problems.append(f"image transfer {transfer_id}: {exc}")
            say(f"Could not cancel image transfer {transfer_id} of disk {disk_name}: {exc} "
                "(reconcile will retry).", "warning")

    def _finalize_backup(self, engine, say, problems: list) -> None:
        try:
            ovirt.finalize_backup(engine, self.vm_id, self.backup_id)
            ovirt.wait_backup_done(engine, self.vm_id, self.backup_id, timeout=CLEANUP_TIMEOUT)
            self.backup_finalized = True
            say(f"Finalized backup {self.backup_id}.", "info")
        except EngineError as exc:
            problems.append(f"backup {self.backup_id}: {exc}")
            say(f"Could not finalize backup {self.backup_id}: {exc} (reconcile will retry).", "warning")

    def _delete_snapshot(self, engine, say, problems: list) -> None:
        try:
            ovirt.delete_snapshot(engine, self.vm_id, self.snapshot_id)
            ovirt.wait_snapshot_gone(engine, self.vm_id, self.snapshot_id, timeout=CLEANUP_TIMEOUT)
            say(f"Deleted snapshot {self.snapshot_id}.", "info")
            self.snapshot_id = None
        except EngineError as exc:
            problems.append(f"snapshot {self.snapshot_id}: {exc}")
            say(f"Could not delete snapshot {self.snapshot_id}: {exc} (reconcile will retry).", "warning")
