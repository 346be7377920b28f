"""Restore one disk: data mover chunks → imageio upload transfer (plain Python, no Django).

Zero blocks are never written: consecutive zero blocks become one
``PATCH {"op": "zero"}``, and ranges the target already reads as zero (a new
sparse disk) are left alone. Data blocks are fetched, decoded and checked
against their name (SHA-256, or the keyed hash), patched blocks composed from
their chunks (repositories/store/patches.py), then written with ``PUT`` + ``Content-Range`` over
several keep-alive connections, without a flush per request; one flush at the
end makes them durable.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

from repositories.store import BLOCK_SIZE, DiskIndex, block_length, decode_named
from repositories.store.errors import ChunkError
from repositories.store.patches import read_entry
from vbrsite.heap import keep_block_buffers
from workers.runtime.backup import disk_size
from workers.runtime.common import (
    Cancelled,
    Counters,
    Monitor,
    MoverError,
    Supervisor,
    Throttle,
    wait_with_monitor,
)
from workers.runtime.imageio import ImageioClient, ImageioError


def zero_runs(index: DiskIndex) -> list[tuple[int, int]]:
    """Byte ranges (offset, length) of consecutive zero blocks, coalesced."""
    runs: list[tuple[int, int]] = []
    for block, entry in enumerate(index.blocks):
        if entry is not None:
            continue
        offset, length = block * index.block_size, block_length(index.size, block, index.block_size)
        if runs and runs[-1][0] + runs[-1][1] == offset:
            runs[-1] = (runs[-1][0], runs[-1][1] + length)
        else:
            runs.append((offset, length))
    return runs


def subtract_zero_extents(runs: list[tuple[int, int]], extents: list[dict]) -> list[tuple[int, int]]:
    """The parts of ``runs`` the target doesn't already read as zero (both sorted by offset)."""
    known_zero = [(int(e["start"]), int(e["start"]) + int(e["length"]))
                  for e in extents if e.get("zero")]
    result: list[tuple[int, int]] = []
    z = 0
    for offset, length in runs:
        start, end = offset, offset + length
        while z < len(known_zero) and known_zero[z][1] <= start:
            z += 1
        k = z
        while start < end:
            if k >= len(known_zero) or known_zero[k][0] >= end:
                result.append((start, end - start))
                break
            zero_start, zero_end = known_zero[k]
            if zero_start > start:
                result.append((start, zero_start - start))
            start = max(start, zero_end)
            k += 1
    return result


class _DiskRestore:
    """The shared state of one disk's restore; ``loop`` runs in each mover thread."""

    def __init__(self, target: ImageioClient, mover, key, index: DiskIndex, counters: Counters,
                 throttle: Throttle):
        self.target, self.mover, self.key, self.index = target, mover, key, index
        self.throttle = throttle
        self.counters = counters
        self._blocks: Iterator[int] = (i for i, entry in enumerate(index.blocks) if entry is not None)
        self._lock = threading.Lock()

    def _next(self) -> int | None:
        with self._lock:
            return next(self._blocks, None)

    def loop(self, stop: threading.Event) -> None:
        with self.target.connect() as connection:
            while not stop.is_set() and (block := self._next()) is not None:
                self.throttle.consume(block_length(self.index.size, block, self.index.block_size), stop)
                if stop.is_set():
                    break
                self._restore(connection, block)
            self.counters.add(retried_requests=connection.retried)

    def _restore(self, connection, block: int) -> None:
        received = 0

        def read(digest: str, length: int) -> bytes:
            nonlocal received
            blob = self.mover.get_chunk(digest)
            received += len(blob)
            return decode_named(blob, digest, self.key, length)

        try:
            data = read_entry(self.index.blocks[block],
                              block_length(self.index.size, block, self.index.block_size), read)
        except ChunkError as exc:
            raise MoverError(f"block {block} can't be restored: {exc}") from None
        connection.write(block * self.index.block_size, data)
        self.counters.add(bytes_received=received, bytes_written=len(data),
                          bytes_done=len(data), blocks_written=1)


def restore_disk(target: ImageioClient, mover, key, index: DiskIndex, *, connections: int = 4,
                 monitor: Monitor, max_rate: float | None = None) -> dict:
    """Write the disk of ``index`` through the upload transfer ``target``; return the figures.

    The target must be at least as large as the disk. Raises Cancelled when the
    monitor asks; the partly written target disk is then the caller's to remove.
    """
    if index.block_size != BLOCK_SIZE:
        raise MoverError(f"disk {index.id} uses blocks of {index.block_size} bytes; "
                         f"this worker reads {BLOCK_SIZE}")
    keep_block_buffers()  # before any thread of this disk: they all share one heap
    with target.connect() as connection:
        extents = _target_extents(connection, monitor)
        if extents and disk_size(extents) < index.size:
            raise MoverError(f"the target disk holds {disk_size(extents)} bytes, the restore point's "
                             f"disk {index.id} needs {index.size}: create a larger disk")
        counters = Counters()
        supervisor = Supervisor(monitor, counters, index.allocated_bytes())
        zeroed = _zero(connection, zero_runs(index), extents, monitor)
        job = _DiskRestore(target, mover, key, index, counters, Throttle(max_rate))
        supervisor.run(job.loop, max(1, connections), name=f"restore-{index.id[:8]}")
        connection.flush()
    figures = {name: counters.get(name) for name in (
        "bytes_received", "bytes_written", "blocks_written", "retried_requests")}
    figures.update(size=index.size, zero_bytes=index.size - index.allocated_bytes(),
                   bytes_zeroed=zeroed, seconds=round(supervisor.seconds(), 3))
    return figures


def _target_extents(connection, monitor: Monitor) -> list[dict]:
    """The target's zero extents, or [] when it can't tell (then every zero range is zeroed)."""
    try:
        return wait_with_monitor(lambda: connection.extents("zero"), monitor,
                                 keepalive=lambda: None, name="target-extents")
    except ImageioError as exc:
        if exc.status in (404, 405):
            return []
        raise


def _zero(connection, runs: list[tuple[int, int]], extents: list[dict], monitor: Monitor) -> int:
    zeroed = 0
    for offset, length in subtract_zero_extents(runs, extents):
        if monitor.should_cancel():
            raise Cancelled("the task was cancelled")
        connection.zero(offset, length)
        zeroed += length
    return zeroed
