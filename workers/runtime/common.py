"""What the disk movers share: the monitor they report to, and the supervised thread pool.

The threads move blocks; the calling thread (the only one that may touch the
database, through the monitor) wakes up every ``TICK`` seconds to report
progress, check for cancellation and notice a failed thread.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from vbrsite.heap import release_free_memory

log = logging.getLogger(__name__)

TICK = 0.5
PROGRESS_EVERY = 1.0  # seconds between progress reports (the contract says at most 2)


class Cancelled(Exception):
    """The task was cancelled; nothing was left half-written in the repository."""


class MoverError(Exception):
    """A disk could not be moved; the message says why and what to check."""


class Monitor(Protocol):
    """Where a disk mover reports; called from the calling thread only."""

    def progress(self, done: int, total: int, rate: float, figures: dict | None = None) -> None:
        """Bytes processed so far, bytes to process, bytes per second, and the task's
        counters so far (bytes read, sent, stored...)."""

    def should_cancel(self) -> bool:
        """True once the task must stop (checked at least every second)."""

    def reads_done(self) -> None:
        """A backup read every block it needs: its transfer may be finalized while the
        last blocks are still sent (called once at most)."""


class NullMonitor:
    """A monitor that ignores progress and never cancels (tests, exports)."""

    def progress(self, done: int, total: int, rate: float, figures: dict | None = None) -> None:
        pass

    def should_cancel(self) -> bool:
        return False

    def reads_done(self) -> None:
        pass


@dataclass
class Counters:
    """Figures the mover threads add to under a lock."""

    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    values: dict[str, int] = field(default_factory=dict)

    def add(self, **amounts: int) -> None:
        with self.lock:
            for name, amount in amounts.items():
                self.values[name] = self.values.get(name, 0) + amount

    def get(self, name: str) -> int:
        with self.lock:
            return self.values.get(name, 0)

    def snapshot(self) -> dict[str, int]:
        with self.lock:
            return dict(self.values)


class Supervisor:
    """Run ``count`` copies of a mover loop in threads; report, cancel and fail fast.

    ``loop(stop_event)`` moves blocks until there are none left or the event is
    set. The first exception of any thread stops the others and is raised again
    in the caller; a cancel request stops them and raises Cancelled. A loop that
    has read all it will read calls ``all_read()``: the calling thread tells the
    monitor at once.
    """

    def __init__(self, monitor: Monitor, counters: Counters, total: int,
                 done_counter: str = "bytes_done", on_tick: Callable[[], None] | None = None):
        self.monitor, self.counters, self.total = monitor, counters, total
        self.done_counter, self.on_tick = done_counter, on_tick
        self.stop = threading.Event()
        self.errors: list[BaseException] = []
        self.started = time.monotonic()
        self._wake = threading.Event()  # a loop ended, or everything is read
        self._ended = 0
        self._read = False
        self._lock = threading.Lock()

    def all_read(self) -> None:
        """From a mover thread: nothing is left to read (what was read may still be sent)."""
        self._read = True
        self._wake.set()

    def run(self, loop: Callable[[threading.Event], None], count: int, name: str) -> None:
        threads = [threading.Thread(target=self._guard, args=(loop,), name=f"{name}-{i}",
                                    daemon=True) for i in range(count)]
        for thread in threads:
            thread.start()
        try:
            self._watch(threads)
        finally:
            self.stop.set()
            for thread in threads:
                thread.join()
            release_free_memory()  # the disk is moved: its buffers go back to the kernel
        if self.errors:
            raise self.errors[0]
        self.report()

    def _guard(self, loop: Callable[[threading.Event], None]) -> None:
        try:
            loop(self.stop)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
            self.errors.append(exc)
            self.stop.set()
        finally:
            with self._lock:
                self._ended += 1
            self._wake.set()

    def _watch(self, threads: list[threading.Thread]) -> None:
        last_report, told = 0.0, False
        while True:
            self._wake.clear()  # before looking: a wake from now on ends the next wait
            if self._ended == len(threads):
                return
            if self._read and not told and not self.stop.is_set():
                self.monitor.reads_done()
                told = True
            self._wake.wait(TICK)
            if self.monitor.should_cancel():
                self.stop.set()
                for thread in threads:
                    thread.join()
                raise Cancelled("the task was cancelled")
            if self.on_tick is not None:
                self.on_tick()
            if time.monotonic() - last_report >= PROGRESS_EVERY:
                self.report()
                last_report = time.monotonic()

    def report(self) -> None:
        done = self.counters.get(self.done_counter)
        elapsed = max(time.monotonic() - self.started, 1e-6)
        self.monitor.progress(done, self.total, done / elapsed, self.counters.snapshot())

    def seconds(self) -> float:
        return time.monotonic() - self.started


def wait_with_monitor(work: Callable[[], object], monitor: Monitor, *, keepalive: Callable[[], None],
                      keepalive_every: float = 20.0, name: str = "wait") -> object:
    """Run ``work`` in a thread; meanwhile keep the ticket alive and honour cancellation.

    Used for calls that may take long on huge sparse disks (extents), during
    which imageio sees no other request on the ticket.
    """
    outcome: dict = {}

    def target() -> None:
        try:
            outcome["value"] = work()
        except BaseException as exc:  # noqa: BLE001 - raised again below
            outcome["error"] = exc

    thread = threading.Thread(target=target, name=name, daemon=True)
    thread.start()
    last_keepalive = time.monotonic()
    while thread.is_alive():
        thread.join(TICK)
        if monitor.should_cancel():
            # The request can't be interrupted; the thread ends with it and is dropped.
            raise Cancelled("the task was cancelled")
        if thread.is_alive() and time.monotonic() - last_keepalive >= keepalive_every:
            try:
                keepalive()
            except Exception as exc:  # noqa: BLE001 - the main request will report the real problem
                log.warning("keeping the transfer ticket alive failed: %s", exc)
            last_keepalive = time.monotonic()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


class Throttle:
    """Keep the bytes moved by all threads of a task under ``bytes_per_second`` (None: no limit).

    Each thread reserves the time its bytes take at the limit and waits for its
    turn; the wait ends early when ``stop`` is set, so cancellation stays prompt.
    """

    def __init__(self, bytes_per_second: float | None = None):
        self.rate = bytes_per_second if bytes_per_second and bytes_per_second > 0 else None
        self._next = time.monotonic()
        self._lock = threading.Lock()

    def consume(self, amount: int, stop: threading.Event) -> None:
        if self.rate is None:
            return
        with self._lock:
            now = time.monotonic()
            start = max(self._next, now)
            self._next = start + amount / self.rate
        if start > now:
            stop.wait(start - now)
