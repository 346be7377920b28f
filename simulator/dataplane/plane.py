"""DataPlane: the simulator's host side — imageio daemon, qemu-nbd exports and volume images."""

import hashlib
import shutil
import tempfile
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from . import bitmaps, volumes
from .daemon import ImageioDaemon
from .errors import DataPlaneError
from .faults import DropRelay
from .transfers import TransferEndpoint, TransferRequest, Transfers

# The guest's writes during a backup go to this overlay beside the volume (see README.md).
PIT_SUFFIX = ".pit"
_WILDCARDS = ("0.0.0.0", "::", "")


class DataPlane:
    """Everything that moves or holds disk bytes in the simulator, under state_dir/"dataplane".

    tls is (key_file, cert_file, ca_file) for the daemon's HTTPS port.
    """

    def __init__(self, state_dir: Path, host: str = "127.0.0.1",
                 tls: tuple[Path, Path, Path] | None = None, public_host: str | None = None):
        if tls is None:
            raise DataPlaneError("DataPlane needs tls=(key_file, cert_file, ca_file)")
        self.home = Path(state_dir) / "dataplane"
        self.host = host
        self.public_host = public_host or (host if host not in _WILDCARDS else "127.0.0.1")
        self.sock_dir = _socket_dir(self.home)
        self.daemon = ImageioDaemon(self.home, self.sock_dir, host, tls)
        self.transfers = Transfers(self.daemon, self.sock_dir, self.home / "log")
        self._faults: list[dict] = []
        self._faults_lock = threading.Lock()
        self._volume_locks: dict[str, threading.RLock] = {}
        self._volume_locks_lock = threading.Lock()

    # Lifecycle

    def start(self) -> None:
        """Start the imageio daemon; transfers of an earlier run must be opened again."""
        self.home.mkdir(parents=True, exist_ok=True)
        self.daemon.start()

    def stop(self) -> None:
        """Close every transfer, stop every qemu-nbd and the daemon; no process is left."""
        try:
            for transfer_id in self.transfers.ids():
                try:
                    # The daemon's tickets die with it; only the exports need stopping.
                    self.transfers.close(transfer_id, remove_ticket=False)
                except DataPlaneError:
                    pass
        finally:
            self.daemon.stop()
            shutil.rmtree(self.sock_dir, ignore_errors=True)

    @property
    def port(self) -> int | None:
        """The daemon's HTTPS port while it runs."""
        return self.daemon.port

    # Volumes

    def create_volume(self, path: Path, fmt: str, size: int, sparse: bool = True,
                      backing: Path | None = None) -> None:
        """A new volume; with backing, a cow overlay that also carries the backing's checkpoints."""
        with self._locked(path, *([backing] if backing else [])):
            volumes.create(Path(path), fmt, size, sparse=sparse, backing=backing)
            if backing is not None:
                # As vdsm does for a new snapshot layer: the checkpoints go on tracking writes here.
                for bitmap in bitmaps.list_(Path(backing)):
                    if bitmap["consistent"]:
                        bitmaps.add(Path(path), bitmap["name"])

    def seed_volume(self, path: Path, fmt: str, size: int, seed: int,
                    allocated_fraction: float) -> None:
        """A new volume with deterministic content: zero, text-like and random areas, sparse."""
        with self._locked(path):
            volumes.seed(Path(path), fmt, size, seed, allocated_fraction)

    def guest_write(self, path: Path, fmt: str, offset: int, length: int, seed: int) -> None:
        """Write deterministic data as the guest would; during a backup, into its overlay (made
        by the first write: the volume itself stays as it was when the backup began)."""
        path = Path(path)
        with self._locked(path):
            overlay = _pit_overlay(path)
            if _pit_frozen(path).exists() and not overlay.exists():
                volumes.create(overlay, "cow", None, backing=path)  # the volume's size
            target, target_fmt = self.guest_view(path, fmt)
            volumes.guest_write(target, target_fmt, offset, length, seed)

    def guest_view(self, path: Path, fmt: str | None = None) -> tuple[Path, str]:
        """(image, format) holding what the guest sees now: the overlay during a backup."""
        path = Path(path)
        overlay = _pit_overlay(path)
        if overlay.exists():
            return overlay, "cow"
        return path, fmt or volumes.info(path)["format"]

    def volume_info(self, path: Path) -> dict:
        """{"virtual_size", "actual_size", "format" ("raw"|"cow"), "backing" (str|None)}."""
        found = volumes.info(Path(path))
        return {"virtual_size": found["virtual_size"], "actual_size": found["actual_size"],
                "format": found["format"],
                "backing": str(found["backing"]) if found["backing"] else None}

    def commit_volume(self, top: Path, base: Path, children: list[Path] = ()) -> None:
        """Merge top down into base (snapshot removal); children of top are rebased on base.

        Checkpoints only top had are added to base first, so the merged writes stay dirty.
        """
        top, base = Path(top), Path(base)
        with self._locked(top, base, *children):
            have = {b["name"] for b in bitmaps.list_(base)}
            if volumes.info(base)["format"] == "cow":
                for bitmap in bitmaps.list_(top):
                    if bitmap["consistent"] and bitmap["name"] not in have:
                        bitmaps.add(base, bitmap["name"])
            volumes.commit(top, base)
            for child in children:
                volumes.rebase(Path(child), base)

    def rebase_volume(self, path: Path, backing: Path) -> None:
        """Point a cow volume at another backing holding the same guest data (`rebase -u`)."""
        with self._locked(path):
            volumes.rebase(Path(path), Path(backing))

    def delete_volume(self, path: Path) -> None:
        """Remove a volume (and a point-in-time overlay left on it)."""
        with self._locked(path):
            _pit_overlay(Path(path)).unlink(missing_ok=True)
            _pit_frozen(Path(path)).unlink(missing_ok=True)
            volumes.delete(Path(path))

    # Checkpoints

    def add_bitmap(self, volume: Path, name: str) -> None:
        """A checkpoint: a persistent dirty bitmap in a cow volume, tracking writes from now on."""
        with self._locked(volume):
            bitmaps.add(Path(volume), name)

    def remove_bitmap(self, volume: Path, name: str) -> None:
        with self._locked(volume):
            bitmaps.remove(Path(volume), name)

    def list_bitmaps(self, volume: Path) -> list[dict]:
        """[{"name", "granularity", "consistent"}]; [] for a raw volume."""
        return bitmaps.list_(Path(volume))

    def invalidate_bitmap(self, volume: Path, name: str, how: str = "inconsistent") -> None:
        """Break a checkpoint as a host crash does: "inconsistent" (flagged in-use) or "removed"."""
        with self._locked(volume):
            bitmaps.invalidate(Path(volume), name, how)

    # Point in time

    def begin_backup(self, volume_list: list[Path]) -> None:
        """Freeze the volumes for a backup: from now on the guest writes into an overlay."""
        done = []
        try:
            for volume in map(Path, volume_list):
                with self._locked(volume):
                    if self.in_backup(volume):
                        raise DataPlaneError(f"{volume} is already in a backup")
                    _pit_frozen(volume).touch()
                done.append(volume)
        except BaseException:
            self.end_backup(done)
            raise

    def end_backup(self, volume_list: list[Path]) -> None:
        """Merge what the guest wrote during the backup into the volumes (marking it dirty)."""
        for volume in map(Path, volume_list):
            with self._locked(volume):
                overlay = _pit_overlay(volume)
                if overlay.exists():
                    volumes.commit(overlay, volume)
                    overlay.unlink()
                _pit_frozen(volume).unlink(missing_ok=True)

    def in_backup(self, volume: Path) -> bool:
        volume = Path(volume)
        return _pit_frozen(volume).exists() or _pit_overlay(volume).exists()

    # Transfers

    def open_transfer(self, transfer_id: str, volume: Path, fmt: str, direction: str,
                      transfer_format: str, size: int, timeout: int, inactivity_timeout: int,
                      whole_chain: bool = True, dirty_bitmap: str | None = None,
                      ticket_id: str | None = None) -> TransferEndpoint:
        """Export the volume through qemu-nbd and add an imageio ticket for it."""
        request = TransferRequest(transfer_id, Path(volume), fmt, direction, transfer_format,
                                  size, timeout, inactivity_timeout, whole_chain, dirty_bitmap,
                                  ticket_id)
        with self._locked(volume):
            self.transfers.open(request)
        fault = self._fault_for(transfer_id)
        if fault is not None:
            self._attach_relay(transfer_id, fault)
        return self.endpoint(transfer_id)

    def endpoint(self, transfer_id: str) -> TransferEndpoint:
        """The URLs of an open transfer (on the drop relay while a drop fault applies to it)."""
        transfer = self.transfers.get(transfer_id)
        if transfer.relay is not None:
            # Not 127.0.0.1: the client would see a local peer and bypass the relay through
            # the daemon's unix socket.
            host, port = transfer.relay.address
        else:
            host, port = self.public_host, self.daemon.port
        url = f"https://{host}:{port}/images/{transfer.ticket_id}"
        return TransferEndpoint(transfer.ticket_id, url, url)

    def transfer_activity(self, transfer_id: str) -> dict:
        """{"transferred", "idle_seconds", "active"} from the daemon's ticket status."""
        ticket = self.daemon.get_ticket(self.transfers.get(transfer_id).ticket_id)
        return {"transferred": ticket.get("transferred", 0),
                "idle_seconds": float(ticket.get("idle_time", 0)),
                "active": bool(ticket.get("active"))}

    def extend_transfer(self, transfer_id: str, timeout: int) -> None:
        """Push the ticket's expiry timeout seconds ahead, as the engine does while in use."""
        self.daemon.extend_ticket(self.transfers.get(transfer_id).ticket_id, timeout)

    def close_transfer(self, transfer_id: str) -> None:
        """Remove the ticket (waiting for requests in flight), stop its qemu-nbd (flushing).

        A transfer that is not open (closed already, or lost with a restart) is no error.
        """
        try:
            volume = self.transfers.get(transfer_id).request.volume
        except DataPlaneError:
            return
        with self._locked(volume):
            self.transfers.close(transfer_id)

    # Faults

    def drop_connections_after(self, transfer_id: str | None, nbytes: int,
                               count: int | None = None) -> None:
        """Cut imageio connections of a transfer (None: every transfer) after nbytes each."""
        if nbytes < 0:
            raise DataPlaneError("nbytes must be >= 0")
        fault = {"kind": "drop_connections", "transfer_id": transfer_id, "nbytes": nbytes,
                 "count": count}
        with self._faults_lock:
            self._faults.append(fault)
        targets = self.transfers.ids() if transfer_id is None else [transfer_id]
        for target in targets:
            if target in self.transfers.ids():
                self._attach_relay(target, fault)

    def list_faults(self) -> list[dict]:
        with self._faults_lock:
            return [dict(f) for f in self._faults]

    def clear_faults(self) -> None:
        """Forget armed faults; open transfers go back to the daemon's own URL."""
        with self._faults_lock:
            self._faults.clear()
        for transfer_id in self.transfers.ids():
            transfer = self.transfers.get(transfer_id)
            relay, transfer.relay = transfer.relay, None
            if relay is not None:
                relay.close()

    @contextmanager
    def _locked(self, *paths: Path) -> Iterator[None]:
        """Serialize our own qemu tools on these volumes (qemu's image locks would fail them)."""
        keys = sorted({str(Path(p).resolve()) for p in paths})
        with self._volume_locks_lock:
            locks = [self._volume_locks.setdefault(key, threading.RLock()) for key in keys]
        with ExitStack() as stack:
            for lock in locks:
                stack.enter_context(lock)
            yield

    def _fault_for(self, transfer_id: str) -> dict | None:
        with self._faults_lock:
            for fault in reversed(self._faults):
                if fault["transfer_id"] in (None, transfer_id):
                    return fault
        return None

    def _attach_relay(self, transfer_id: str, fault: dict) -> None:
        transfer = self.transfers.get(transfer_id)
        local = self.host in _WILDCARDS or self.host.startswith("127.")
        relay = DropRelay("127.0.0.2" if local else self.host,
                          ("127.0.0.1" if self.host in _WILDCARDS else self.host, self.daemon.port),
                          fault["nbytes"], fault["count"])
        old, transfer.relay = transfer.relay, relay
        if old is not None:
            old.close()


def _pit_overlay(volume: Path) -> Path:
    return volume.with_name(volume.name + PIT_SUFFIX)


def _pit_frozen(volume: Path) -> Path:
    """A mark that the volume is in a backup: the guest's first write makes its overlay."""
    return volume.with_name(volume.name + PIT_SUFFIX + ".frozen")


def _socket_dir(home: Path) -> Path:
    # Unix socket paths are limited to 107 bytes; a test's tmp_path can be longer.
    digest = hashlib.sha1(str(home.resolve()).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"vbr-dataplane-{digest}"
