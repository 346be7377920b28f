"""The engine's core: the model's state, its lock, delayed transitions, events and disk volumes.

Handlers change the model while holding `engine.lock`; every change is saved at once, so a
restart finds what clients last saw. Operations that take time in oVirt (snapshots, transfers,
backups) move through their states on timers of `engine.delay` seconds.
"""

import datetime
import logging
import threading
from collections.abc import Callable
from pathlib import Path

from simulator.errors import ApiError, not_found
from simulator.store import Store, new_id

log = logging.getLogger("simulator")

MAX_EVENTS = 2000


def now() -> str:
    """The current time as stored in the model (ISO 8601 with a time zone)."""
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="milliseconds")


def parse_time(value: str) -> datetime.datetime:
    """A stored time back as a datetime."""
    return datetime.datetime.fromisoformat(value)


class Engine:
    """The simulated engine: state, data plane, timers and the helpers handlers share."""

    def __init__(self, state_dir: Path, host: str, delay: float, dataplane=None):
        self.state_dir = state_dir
        self.host = host
        self.delay = delay
        self.dataplane = dataplane
        self.lock = threading.RLock()
        self.store = Store(state_dir / "state.json")
        self.port = 0
        self._timers: set[threading.Timer] = set()
        self.stopping = False

    # -- lifecycle ---------------------------------------------------------------------------

    def save(self) -> None:
        """Persist the model; call with the lock held."""
        self.store.save()

    def later(self, fn: Callable, *args, delay: float | None = None) -> None:
        """Run fn(*args) under the lock after delay seconds (the engine's delay by default).

        The model is saved afterwards unless fn returns False (nothing changed).
        """
        def run():
            self._timers.discard(timer)
            if self.stopping:
                return
            with self.lock:
                try:
                    changed = fn(*args)
                except Exception:
                    log.exception("delayed step %s failed", getattr(fn, "__name__", fn))
                    changed = True
                if changed is not False:
                    self.save()

        timer = threading.Timer(self.delay if delay is None else delay, run)
        timer.daemon = True
        self._timers.add(timer)
        timer.start()

    def stop_timers(self) -> None:
        """Cancel pending transitions (they resume from the saved state on restart)."""
        self.stopping = True
        for timer in list(self._timers):
            timer.cancel()

    # -- model helpers ------------------------------------------------------------------------

    def get(self, collection: str, entity_id: str, what: str | None = None) -> dict:
        """The entity or a 404 fault."""
        entity = self.store[collection].get(entity_id)
        if entity is None:
            raise not_found(what or collection[:-1])
        return entity

    def add_event(self, description: str, severity: str = "normal", code: int = 0, **refs) -> None:
        """Record an event as the engine's audit log does (vm=, disk=, host= ids in refs)."""
        meta = self.store.meta
        meta["event_seq"] = meta.get("event_seq", 0) + 1
        event_id = str(meta["event_seq"])
        self.store["events"][event_id] = {
            "id": event_id, "description": description, "severity": severity, "code": code,
            "time": now(), "origin": "oVirt", **{k: v for k, v in refs.items() if v},
        }
        events = self.store["events"]
        if len(events) > MAX_EVENTS:
            for old in sorted(events, key=int)[: len(events) - MAX_EVENTS]:
                del events[old]

    # -- disks and their volumes ---------------------------------------------------------------

    def volume_path(self, disk: dict, volume: dict) -> Path:
        """Where a volume lives: DIR/storage/<storage domain>/images/<disk>/<volume>."""
        return (self.state_dir / "storage" / disk["storage_domain"] / "images" / disk["id"]
                / volume["id"])

    def storage_dir(self, storage_domain_id: str) -> Path:
        """The image directory of a storage domain."""
        return self.state_dir / "storage" / storage_domain_id / "images"

    def require_dataplane(self):
        """The data plane, or a 500 fault when this build runs without one."""
        if self.dataplane is None:
            raise ApiError(500, "Internal Server Error", "The simulator runs without a data plane.")
        return self.dataplane

    def materialize(self, disk: dict) -> None:
        """Create a disk's volume files on first use (inventory seeds create them lazily)."""
        previous: Path | None = None
        for volume in disk["volumes"]:
            path = self.volume_path(disk, volume)
            if not volume.get("created"):
                dataplane = self.require_dataplane()
                path.parent.mkdir(parents=True, exist_ok=True)
                seed = volume.get("seed")
                if seed is not None and previous is None:
                    dataplane.seed_volume(path, volume["format"], disk["provisioned_size"],
                                          seed=seed["seed"],
                                          allocated_fraction=seed["allocated_fraction"])
                else:
                    dataplane.create_volume(path, volume["format"], disk["provisioned_size"],
                                            sparse=disk.get("sparse", True), backing=previous)
                volume["created"] = True
            previous = path
        self.refresh_actual_size(disk)

    def refresh_actual_size(self, disk: dict) -> None:
        """Update a disk's actual size from its volume files."""
        total = 0
        for volume in disk["volumes"]:
            path = self.volume_path(disk, volume)
            if volume.get("created") and path.exists():
                total += path.stat().st_blocks * 512
        disk["actual_size"] = total

    def active_volume(self, disk: dict) -> dict:
        """The volume the VM writes into: the top of the chain."""
        return disk["volumes"][-1]

    def new_volume(self, fmt: str) -> dict:
        """A volume record not yet on disk."""
        return {"id": new_id(), "format": fmt, "created": False}
