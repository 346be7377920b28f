"""Image transfers: an imageio ticket over a qemu-nbd export (or a file), as vdsm sets them up."""

import os
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from . import bitmaps, volumes
from .daemon import ImageioDaemon
from .errors import DataPlaneError
from .faults import DropRelay
from .nbd import NbdExport

DIRECTIONS = ("download", "upload")
TRANSFER_FORMATS = ("raw", "cow")


@dataclass(frozen=True)
class TransferEndpoint:
    """What the engine puts in an image transfer: the ticket and the two URLs to it."""

    ticket_id: str
    transfer_url: str
    proxy_url: str


@dataclass
class TransferRequest:
    """The arguments of DataPlane.open_transfer, checked."""

    transfer_id: str
    volume: Path
    fmt: str
    direction: str
    transfer_format: str
    size: int
    timeout: int
    inactivity_timeout: int
    whole_chain: bool = True
    dirty_bitmap: str | None = None
    ticket_id: str | None = None

    def check(self) -> None:
        if self.direction not in DIRECTIONS:
            raise DataPlaneError(f"direction {self.direction!r}: use one of {DIRECTIONS}")
        if self.transfer_format not in TRANSFER_FORMATS:
            raise DataPlaneError(
                f"transfer format {self.transfer_format!r}: use one of {TRANSFER_FORMATS}")
        volumes.qemu_format(self.fmt)
        if not self.volume.exists():
            raise DataPlaneError(f"volume {self.volume} does not exist")
        if self.dirty_bitmap and (self.direction != "download" or self.transfer_format != "raw"):
            raise DataPlaneError("a dirty bitmap is exported only for a raw-format download "
                                 "(a backup transfer)")
        if self.dirty_bitmap and self.fmt != "cow":
            raise DataPlaneError(f"{self.volume} is raw: raw volumes have no bitmaps")
        if self.timeout <= 0 or self.inactivity_timeout <= 0:
            raise DataPlaneError("timeout and inactivity_timeout must be positive seconds")


@dataclass
class Transfer:
    """One open transfer and what it holds."""

    request: TransferRequest
    ticket_id: str
    export: NbdExport | None
    url: str
    size: int
    temporary_bitmap: str | None = None
    relay: DropRelay | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)


class Transfers:
    """The open transfers of one data plane."""

    def __init__(self, daemon: ImageioDaemon, run_dir: Path, log_dir: Path):
        self.daemon = daemon
        self.run_dir = run_dir
        self.log_dir = log_dir
        self._open: dict[str, Transfer] = {}
        self._lock = threading.Lock()

    def open(self, request: TransferRequest) -> Transfer:
        """Export the volume, add the ticket; undo both if either fails."""
        request.check()
        if self.daemon.port is None:
            raise DataPlaneError("the imageio daemon is not running: call DataPlane.start() first")
        ticket_id = request.ticket_id or str(uuid.uuid4())
        with self._lock:
            if request.transfer_id in self._open:
                raise DataPlaneError(f"transfer {request.transfer_id} is open already")
            # Reserve the id while qemu-nbd starts, outside the lock.
            self._open[request.transfer_id] = None  # type: ignore[assignment]
        try:
            transfer = self._start(request, ticket_id)
        except BaseException:
            with self._lock:
                del self._open[request.transfer_id]
            raise
        with self._lock:
            self._open[request.transfer_id] = transfer
        return transfer

    def get(self, transfer_id: str) -> Transfer:
        with self._lock:
            transfer = self._open.get(transfer_id)
        if transfer is None:
            raise DataPlaneError(f"no open transfer {transfer_id}")
        return transfer

    def ids(self) -> list[str]:
        with self._lock:
            return [key for key, value in self._open.items() if value is not None]

    def close(self, transfer_id: str, remove_ticket: bool = True) -> None:
        """Remove the ticket (after requests in flight), stop qemu-nbd (it flushes), clean up.

        Closing a transfer that is not open does nothing, so cleanup paths can always call it.
        """
        with self._lock:
            transfer = self._open.get(transfer_id)
        if transfer is None:
            return
        try:
            if remove_ticket:
                self.daemon.remove_ticket(transfer.ticket_id)
        finally:
            with self._lock:
                self._open.pop(transfer_id, None)
            if transfer.relay is not None:
                transfer.relay.close()
            if transfer.export is not None:
                transfer.export.stop()
            if transfer.temporary_bitmap:
                bitmaps.remove(transfer.request.volume, transfer.temporary_bitmap)

    def _start(self, request: TransferRequest, ticket_id: str) -> Transfer:
        short = request.transfer_id.replace("/", "_")[:40]
        # Looked up once: the bitmaps, the backing chain and the size all come from it.
        found = volumes.info(request.volume) if request.dirty_bitmap or request.transfer_format == "raw" else None
        bitmap, temporary = self._bitmap_to_export(request, ticket_id, found)
        export = None
        try:
            if request.transfer_format == "cow" and request.direction == "upload":
                url, size = f"file://{request.volume}", _cow_upload_size(request)
                # imageio's file backend writes only within the file: make room, as vdsm sizes
                # the volume to the disk's initial size (the tail stays a hole).
                if request.volume.stat().st_size < size:
                    os.truncate(request.volume, size)
            else:
                export = NbdExport(self.run_dir / f"nbd-{ticket_id[:8]}.sock",
                                   self.log_dir / f"qemu-nbd-{short}.log",
                                   self.run_dir / f"nbd-{ticket_id[:8]}.pid")
                nbd_format = "raw" if request.transfer_format == "cow" else volumes.qemu_format(
                    request.fmt)
                export.start(request.volume, nbd_format, writable=request.direction == "upload",
                             whole_chain=request.whole_chain, bitmap=bitmap)
                url, size = export.url, self._export_size(request, found)
            self.daemon.add_ticket({
                "uuid": ticket_id, "size": size, "url": url,
                "ops": ["read"] if request.direction == "download" else ["write"],
                "timeout": request.timeout, "inactivity_timeout": request.inactivity_timeout,
                "sparse": True, "dirty": bool(request.dirty_bitmap),
                "transfer_id": request.transfer_id,
            })
        except BaseException:
            if export is not None:
                export.stop()
            if temporary:
                bitmaps.remove(request.volume, temporary)
            raise
        return Transfer(request, ticket_id, export, url, size, temporary_bitmap=temporary)

    def _export_size(self, request: TransferRequest, found: dict | None) -> int:
        if request.transfer_format == "cow":
            return request.volume.stat().st_size
        return (found or volumes.info(request.volume))["virtual_size"]

    def _bitmap_to_export(self, request: TransferRequest, ticket_id: str,
                          found: dict | None) -> tuple[str | None, str | None]:
        """The bitmap name qemu-nbd exports, and the temporary one to remove afterwards.

        A checkpoint's bitmap must be in the exported (top) volume. Where lower layers of the
        chain hold it too (it was copied up when a snapshot was taken), the union of them all is
        exported, as libvirt merges a chain's bitmaps for a backup.
        """
        name = request.dirty_bitmap
        if not name:
            return None, None
        found = found or volumes.info(request.volume)
        _require_consistent(request.volume, name, found)
        sources = [(request.volume, name)]
        lower = found["backing"]
        while lower is not None and request.whole_chain:
            below = volumes.info(lower)
            if name not in {b["name"] for b in bitmaps.from_info(below)}:
                break
            _require_consistent(lower, name, below)
            sources.append((lower, name))
            lower = below["backing"]
        if len(sources) == 1:
            return name, None
        temporary = f"backup-{ticket_id[:8]}"
        bitmaps.merge_into(request.volume, temporary, sources)
        return temporary, temporary


def _cow_upload_size(request: TransferRequest) -> int:
    """Room for a qcow2 file of the volume's virtual size: its data plus metadata."""
    virtual = volumes.info(request.volume)["virtual_size"]
    return max(request.size, virtual + virtual // 8 + 16 * 1024 * 1024)


def _require_consistent(volume: Path, name: str, info: dict) -> None:
    """``info``: the volume's volumes.info()."""
    found = {b["name"]: b for b in bitmaps.from_info(info)}
    if name not in found:
        raise DataPlaneError(f"Bitmap does not exist: {name!r} in {volume}")
    if not found[name]["consistent"]:
        raise DataPlaneError(f"Bitmap {name!r} in {volume} is inconsistent and cannot be used")
