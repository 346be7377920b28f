"""Image transfers: the engine's permission to read or write a disk through imageio."""

from __future__ import annotations

from ovirtsdk4 import types

from plugin.engine import convert
from plugin.engine.connection import Engine
from plugin.engine.records import DiskInfo, TransferInfo
from plugin.engine.waiting import ShouldStop, wait_for
from plugin.errors import Conflict, EngineError, NotFound, OperationFailed, translated

SUCCESS_PHASES = frozenset({"finished_success"})
FAILURE_PHASES = frozenset({
    "finished_failure", "cancelled", "cancelled_system", "cancelled_user", "finished_cleanup",
    "finalizing_failure", "finalizing_cleanup",
})
PAUSED_PHASES = frozenset({"paused_system", "paused_user"})
TERMINAL_PHASES = frozenset({"finished_success", "finished_failure", "finished_cleanup"})
# A transfer handed to a worker may wait in its queue, and reading the extents of a
# huge sparse disk takes a while: the engine's default (60 s) would pause it meanwhile.
WORKER_INACTIVITY_SECONDS = 600
# Phases a transfer leaves on its own towards a terminal one; the engine refuses a cancel in them.
ENDING_PHASES = frozenset({
    "finalizing_success", "finalizing_failure", "finalizing_cleanup",
    "cancelled", "cancelled_system", "cancelled_user",
})


def _transfers(engine: Engine):
    return engine.sdk.system_service().image_transfers_service()


@translated("creating an image transfer")
def create_transfer(engine: Engine, *, direction: str, description: str,
                    disk_id: str | None = None, snapshot_image_id: str | None = None,
                    backup_id: str | None = None, format: str = "raw",
                    inactivity_timeout: int | None = None, shallow: bool | None = None) -> TransferInfo:
    """Ask for a transfer of a disk (``disk_id``), a disk snapshot (``snapshot_image_id``,
    see list_snapshot_disks) or a disk in a backup (``disk_id`` and ``backup_id``).

    ``direction`` is "download" or "upload"; ``format`` "raw" (backups must use raw:
    the data read is the guest's view) or "cow". Returns at once in phase
    "initializing"; wait_transfer_ready gives the URLs.
    """
    if direction not in ("download", "upload"):
        raise EngineError(f"Unknown transfer direction {direction!r}: use download or upload.")
    if not (disk_id or snapshot_image_id):
        raise EngineError("An image transfer needs a disk or a disk snapshot.")
    transfer = types.ImageTransfer(
        description=description, direction=types.ImageTransferDirection(direction),
        format=types.DiskFormat(format),
        disk=types.Disk(id=disk_id) if disk_id else None,
        snapshot=types.DiskSnapshot(id=snapshot_image_id) if snapshot_image_id else None,
        backup=types.Backup(id=backup_id) if backup_id else None,
        inactivity_timeout=inactivity_timeout, shallow=shallow,
    )
    return convert.transfer(_transfers(engine).add(transfer))


@translated("reading an image transfer")
def get_transfer(engine: Engine, transfer_id: str) -> TransferInfo:
    """One transfer; NotFound when the engine no longer has it (older engines drop it when done)."""
    return convert.transfer(_transfers(engine).image_transfer_service(transfer_id).get())


@translated("listing image transfers")
def list_transfers(engine: Engine) -> list[TransferInfo]:
    """Every image transfer the engine knows (reconcile picks ours by description or disk)."""
    return [convert.transfer(t) for t in _transfers(engine).list()]


def wait_transfer_phase(engine: Engine, transfer_id: str, phases: set[str] | frozenset[str], *,
                        timeout: float = 300, should_stop: ShouldStop = None) -> TransferInfo:
    """Wait until the transfer is in one of ``phases``; EngineTimeout after ``timeout`` s.

    OperationFailed if it ends in a failure phase that isn't among ``phases``.
    """
    transfer = wait_for(
        lambda: get_transfer(engine, transfer_id),
        lambda t: t.phase in phases or t.phase in FAILURE_PHASES, timeout=timeout,
        what=f"image transfer {transfer_id} to reach {'/'.join(sorted(phases))}",
        describe=lambda t: f"phase {t.phase or 'unknown'}", should_stop=should_stop,
    )
    if transfer.phase not in phases:
        raise OperationFailed(f"Image transfer {transfer_id} ended in phase {transfer.phase}.")
    return transfer


def wait_transfer_ready(engine: Engine, transfer_id: str, *, timeout: float = 300,
                        should_stop: ShouldStop = None) -> TransferInfo:
    """Wait for phase "transferring": transfer_url and proxy_url are then set."""
    transfer = wait_transfer_phase(engine, transfer_id, {"transferring"}, timeout=timeout,
                                   should_stop=should_stop)
    if not (transfer.transfer_url or transfer.proxy_url):
        raise OperationFailed(f"Image transfer {transfer_id} is transferring but has no URL.")
    return transfer


@translated("finalizing an image transfer")
def finalize_transfer(engine: Engine, transfer_id: str) -> None:
    """Tell the engine the data is complete; use wait_transfer_finished for the outcome."""
    _transfers(engine).image_transfer_service(transfer_id).finalize()


@translated("cancelling an image transfer")
def _request_cancel(engine: Engine, transfer_id: str) -> None:
    _transfers(engine).image_transfer_service(transfer_id).cancel()


def cancel_transfer(engine: Engine, transfer_id: str) -> bool:
    """Cancel the transfer (an upload's partial image is removed); True when this cancelled it.

    False when there was nothing to cancel: the transfer is gone, or it is
    ending already (finalizing, or cancelled before), which the engine answers
    with 409. Either way use wait_transfer_ended before touching its disk.
    """
    try:
        _request_cancel(engine, transfer_id)
        return True
    except NotFound:
        return False
    except Conflict:
        try:
            phase = get_transfer(engine, transfer_id).phase
        except NotFound:
            return False
        if phase in ENDING_PHASES or phase in TERMINAL_PHASES:
            return False
        raise


def wait_transfer_finished(engine: Engine, transfer_id: str, disk_id: str | None = None, *,
                           timeout: float = 600, should_stop: ShouldStop = None) -> TransferInfo:
    """Wait for a finalized transfer to finish; OperationFailed if it finished in failure.

    Engines before 4.4.7 drop the transfer once done: then the disk's status tells
    (ok: success, illegal: failure), which is why ``disk_id`` should be given.
    """
    def fetch() -> TransferInfo | DiskInfo:
        try:
            return get_transfer(engine, transfer_id)
        except NotFound:
            if disk_id is None:
                raise
            from plugin.engine.inventory import get_disk

            return get_disk(engine, disk_id)

    def done(item: TransferInfo | DiskInfo) -> bool:
        if isinstance(item, DiskInfo):
            return item.status in ("ok", "illegal")
        return item.phase in SUCCESS_PHASES or item.phase in FAILURE_PHASES

    item = wait_for(fetch, done, timeout=timeout, what=f"image transfer {transfer_id} to finish",
                    describe=lambda i: f"status {getattr(i, 'phase', None) or getattr(i, 'status', '')}",
                    should_stop=should_stop)
    if isinstance(item, DiskInfo):
        if item.status != "ok":
            raise OperationFailed(f"Image transfer {transfer_id} failed: disk {disk_id} is {item.status}.")
        return TransferInfo(id=transfer_id, phase="finished_success", disk_id=disk_id)
    if item.phase not in SUCCESS_PHASES:
        raise OperationFailed(f"Image transfer {transfer_id} ended in phase {item.phase}.")
    return item


def wait_transfer_ended(engine: Engine, transfer_id: str, *, timeout: float = 300,
                        should_stop: ShouldStop = None) -> str:
    """Wait until a transfer (e.g. a cancelled one) is over; its last phase, or "gone".

    Use after cancel_transfer before deleting the disk or finalizing the backup
    it belongs to, so the engine has released its locks.
    """
    def fetch() -> str:
        try:
            return get_transfer(engine, transfer_id).phase
        except NotFound:
            return "gone"

    return wait_for(fetch, lambda phase: phase == "gone" or phase in TERMINAL_PHASES,
                    timeout=timeout, what=f"image transfer {transfer_id} to end",
                    describe=lambda phase: f"phase {phase or 'unknown'}", should_stop=should_stop)
