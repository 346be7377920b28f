"""Back up one disk: imageio transfer → 4 MiB blocks → data mover (plain Python, no Django).

1. Read the transfer's extents (``context=zero`` for a full, ``context=dirty``
   for an incremental) while keeping the ticket alive.
2. Plan the blocks to read: for a full, every block that holds an extent that
   isn't zero; for an incremental, every block that touches a dirty extent (the
   others keep their digest from the base restore point's index).
3. Several threads, each with its own keep-alive imageio connection, take a
   few blocks at a time: read, drop zero blocks, hash, ask the data mover which
   digests it lacks, encode (zstd, AES-GCM where the repository is encrypted)
   and send only those. At most ``connections × BATCH`` blocks are in memory.
4. Return the disk index; the session driver writes the manifest once every
   disk of the VM is done.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass

from repositories.store import (
    BLOCK_SIZE,
    DiskIndex,
    block_count,
    block_digest,
    block_length,
    encode_chunk_parts,
    incremental_disk,
    is_zero,
)
from vbrsite.heap import keep_block_buffers
from workers.runtime.common import (
    Counters,
    Monitor,
    MoverError,
    Supervisor,
    Throttle,
    wait_with_monitor,
)
from workers.runtime.imageio import ImageioClient

BATCH = 4  # blocks a thread reads before asking the data mover which it lacks


@dataclass
class BackupResult:
    """The disk index and the figures of one disk's backup."""

    index: DiskIndex
    figures: dict

    def to_dict(self) -> dict:
        return {"disk_id": self.index.id, "size": self.index.size, "index": self.index.to_dict(),
                "figures": self.figures}


def disk_size(extents: list[dict]) -> int:
    """The image's size: imageio's extents cover it from 0 to the end without a gap."""
    if not extents:
        return 0
    last = extents[-1]
    return int(last["start"]) + int(last["length"])


def block_runs(extents: list[dict], wanted: str) -> list[tuple[int, int]]:
    """Runs of block indexes [first, last] touching an extent to read, merged and in order.

    ``wanted`` is "data" (extents that aren't zero) or "dirty". Runs rather than
    a list of indexes keep the plan small on disks of many terabytes.
    """
    runs: list[tuple[int, int]] = []
    for extent in extents:
        start, length = int(extent["start"]), int(extent["length"])
        selected = not extent.get("zero", False) if wanted == "data" else extent.get("dirty", False)
        if not selected or length <= 0:
            continue
        first, last = start // BLOCK_SIZE, (start + length - 1) // BLOCK_SIZE
        if runs and first <= runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], max(runs[-1][1], last))
        else:
            runs.append((first, last))
    return runs


def incremental_runs(extents: list[dict], base: DiskIndex, size: int) -> list[tuple[int, int]]:
    """The block runs of an incremental: those touching a dirty extent, and the base's short
    last block when the disk grew past it.

    A grown disk's new area isn't dirty unless the guest wrote there, but the
    base's last block was stored short: kept as it is, it would no longer fill
    its block, so it is read again at its new length.
    """
    runs = block_runs(extents, "dirty")
    if size > base.size and base.size % base.block_size:
        tail = base.size // base.block_size
        if not any(first <= tail <= last for first, last in runs):
            runs = sorted([*runs, (tail, tail)])
    return runs


def run_bytes(runs: list[tuple[int, int]], size: int) -> int:
    """Bytes covered by block runs of a disk of ``size`` bytes."""
    total = 0
    for first, last in runs:
        total += (last - first + 1) * BLOCK_SIZE
        if last == block_count(size) - 1:
            total -= BLOCK_SIZE - block_length(size, last)
    return total


class _BlockQueue:
    """Hands out block indexes of the plan, a few at a time, to the mover threads."""

    def __init__(self, runs: list[tuple[int, int]]):
        self._blocks: Iterator[int] = (i for first, last in runs for i in range(first, last + 1))
        self._lock = threading.Lock()

    def take(self, count: int) -> list[int]:
        with self._lock:
            return [index for _, index in zip(range(count), self._blocks, strict=False)]


class _DiskBackup:
    """The shared state of one disk's backup; ``loop`` runs in each mover thread."""

    def __init__(self, source: ImageioClient, mover, key, index: DiskIndex, blocks: _BlockQueue,
                 counters: Counters, throttle: Throttle):
        self.source, self.mover, self.key, self.throttle = source, mover, key, throttle
        self.index, self.blocks, self.counters = index, blocks, counters
        self.claimed: set[str] = set()  # digests stored or being sent by this backup
        self.lock = threading.Lock()

    def loop(self, stop: threading.Event) -> None:
        with self.source.connect() as connection:
            while not stop.is_set():
                batch = self.blocks.take(BATCH)
                if not batch:
                    break
                self._move(connection, batch, stop)
            self.counters.add(retried_requests=connection.retried)

    def _move(self, connection, batch: list[int], stop: threading.Event) -> None:
        pending: list[tuple[int, str, bytes]] = []
        for block in batch:
            if stop.is_set():
                return
            length = block_length(self.index.size, block)
            self.throttle.consume(length, stop)
            data = connection.read(block * BLOCK_SIZE, length)
            # Progress counts bytes read: the sending that follows is bounded by the batch.
            self.counters.add(bytes_read=len(data), blocks_read=1, bytes_done=len(data))
            if is_zero(data):
                self._record(block, None, zero_bytes=len(data))
                continue
            pending.append((block, block_digest(data, self.key), data))
        to_send = self._claim_missing(pending)
        for block, digest, data in pending:
            if stop.is_set():
                return
            if digest in to_send:
                to_send.discard(digest)  # a block repeated within the batch goes once
                parts = encode_chunk_parts(data, self.key)
                stored = self.mover.put_chunk(digest, parts)
                size = sum(len(part) for part in parts)
                self.counters.add(bytes_sent=size, blocks_sent=1, bytes_stored=size if stored else 0)
            else:
                self.counters.add(blocks_deduplicated=1)
            self._record(block, digest)

    def _claim_missing(self, pending: list[tuple[int, str, bytes]]) -> set[str]:
        """Digests this thread must send: unknown to the data mover and not sent by another thread."""
        with self.lock:
            candidates = {digest for _, digest, _ in pending if digest not in self.claimed}
        missing = set(self.mover.missing(sorted(candidates))) if candidates else set()
        with self.lock:
            mine = missing - self.claimed
            self.claimed |= candidates
        return mine

    def _record(self, block: int, digest: str | None, **amounts: int) -> None:
        with self.lock:
            self.index.set_block(block, digest)
        self.counters.add(**amounts)


def backup_disk(source: ImageioClient, mover, key, *, disk_id: str, disk_name: str = "",
                disk_format: str = "raw", base: DiskIndex | None = None, connections: int = 4,
                monitor: Monitor, max_rate: float | None = None) -> BackupResult:
    """Back up the disk behind ``source`` into ``mover``'s repository.

    ``base`` is the disk's index in the restore point an incremental builds on
    (the transfer must then serve dirty extents); None makes a full backup.
    ``key`` is the repository key (None: unencrypted); ``max_rate`` caps the bytes
    read per second (None: no cap). Raises Cancelled when the
    monitor asks, MoverError (or an imageio/data mover error) on failure.
    """
    keep_block_buffers()  # before any thread of this disk: they all share one heap
    context = "dirty" if base is not None else "zero"
    with source.connect() as probe:
        extents = wait_with_monitor(lambda: _extents(source, context), monitor,
                                    keepalive=probe.options, name="extents")
    size = disk_size(extents)
    if size <= 0:
        raise MoverError(f"the transfer of disk {disk_id} reports no extents: is it a disk?")
    runs = incremental_runs(extents, base, size) if base is not None else block_runs(extents, "data")
    if base is not None:
        index = incremental_disk(base, size)
        index.name, index.format = disk_name or base.name, disk_format or base.format
    else:
        index = DiskIndex(id=disk_id, size=size, name=disk_name, format=disk_format)
    counters = Counters()
    total = run_bytes(runs, size)
    supervisor = Supervisor(monitor, counters, total)
    job = _DiskBackup(source, mover, key, index, _BlockQueue(runs), counters, Throttle(max_rate))
    if runs:  # an incremental of an unchanged disk opens no more connections
        supervisor.run(job.loop, max(1, connections), name=f"backup-{disk_id[:8]}")
    return BackupResult(index, _figures(counters, size, total, supervisor.seconds(), context))


def _extents(source: ImageioClient, context: str) -> list[dict]:
    with source.connect() as connection:
        return connection.extents(context)


def _figures(counters: Counters, size: int, planned: int, seconds: float, context: str) -> dict:
    values = counters.snapshot()
    figures = {name: values.get(name, 0) for name in (
        "bytes_read", "bytes_sent", "bytes_stored", "zero_bytes", "blocks_read", "blocks_sent",
        "blocks_deduplicated", "retried_requests")}
    # A full backup skips the zero extents without reading them: they count as zero bytes too.
    if context == "zero":
        figures["zero_bytes"] += size - planned
    figures.update(size=size, seconds=round(seconds, 3), extents_context=context)
    return figures
