"""Back up one disk: imageio transfer → 4 MiB blocks → data mover (plain Python, no Django).

1. Read the transfer's extents (``context=zero`` for a full, ``context=dirty``
   for an incremental) while keeping the ticket alive.
2. Plan what to read (backup_plan.py): for a full, every block that holds an
   extent that isn't zero; for an incremental, every block that touches a dirty
   extent (the others keep their entry from the base restore point's index):
   only its dirty ranges, stored as patches over the base's block, while they
   are few and small; else the whole block.
3. Several threads, each with its own keep-alive imageio connection, take a
   few blocks at a time: read, drop zeros, hash, ask the data mover which
   digests it lacks, encode (zstd, AES-GCM where the repository is encrypted)
   and send only those. At most ``connections × BATCH`` blocks are in memory.
   Once the last block is read the monitor hears ``reads_done()``: the driver
   may finalize the transfer while the last blocks are still being sent.
4. Return the disk index; the session driver writes the manifest once every
   disk of the VM is done.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial

from repositories.store import (
    BLOCK_SIZE,
    DiskIndex,
    block_digest,
    block_length,
    encode_chunk_parts,
    incremental_disk,
    is_zero,
)
from repositories.store.patches import Entry, is_patched, patched
from vbrsite.heap import keep_block_buffers
from workers.runtime.backup_plan import Item, full_plan, incremental_plan, plan_bytes
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


class _PlanQueue:
    """Hands out the plan's items, a few at a time, to the mover threads, and knows when
    every item was read: ``on_read_all()`` is called once the plan is exhausted and no
    thread is still reading a batch it took (the transfer is no longer needed; sending
    may go on)."""

    def __init__(self, plan: Iterator[Item], on_read_all: Callable[[], None]):
        self._items = plan
        self._lock = threading.Lock()
        self._reading = 0  # batches taken and not read yet
        self._exhausted = False
        self.on_read_all = on_read_all

    def take(self, count: int) -> list[Item]:
        """The next items to read; empty once there are none. Each non-empty batch must be
        followed by ``read()`` once all of its items were read."""
        with self._lock:
            batch = [item for _, item in zip(range(count), self._items, strict=False)]
            self._exhausted = self._exhausted or len(batch) < count
            self._reading += bool(batch)
            self._check()
            return batch

    def read(self) -> None:
        with self._lock:
            self._reading -= 1
            self._check()

    def _check(self) -> None:
        if self._exhausted and not self._reading:
            self.on_read_all()


class _DiskBackup:
    """The shared state of one disk's backup; ``loop`` runs in each mover thread."""

    def __init__(self, source: ImageioClient, mover, key, index: DiskIndex, plan: _PlanQueue,
                 counters: Counters, throttle: Throttle):
        self.source, self.mover, self.key, self.throttle = source, mover, key, throttle
        self.index, self.plan, self.counters = index, plan, counters
        self.claimed: set[str] = set()  # digests stored or being sent by this backup
        self.lock = threading.Lock()

    def loop(self, stop: threading.Event) -> None:
        with self.source.connect() as connection:
            while not stop.is_set():
                batch = self.plan.take(BATCH)
                if not batch:
                    break
                self._move(connection, batch, stop)
            self.counters.add(retried_requests=connection.retried)

    def _move(self, connection, batch: list[Item], stop: threading.Event) -> None:
        pieces: list[tuple[str, bytes]] = []  # (digest, plain bytes) to store
        entries: list[tuple[int, Entry]] = []
        connection = _BatchReads(connection, _spans(batch, self.index.size), self.counters)
        for block, ranges in batch:
            if stop.is_set():
                return
            start, length = block * BLOCK_SIZE, block_length(self.index.size, block)
            self.counters.add(blocks_read=1)
            if ranges is None:
                entries.append((block, self._piece(connection, start, length, pieces, stop)))
                continue
            patches = [(offset, size, self._piece(connection, start + offset, size, pieces, stop))
                       for offset, size in ranges]
            with self.lock:
                previous = self.index.blocks[block]
            entry = patched(previous, patches)
            entries.append((block, entry))
            if is_patched(entry):
                self.counters.add(blocks_patched=1)
        if stop.is_set():
            return
        self.plan.read()  # only a batch read whole counts: a stopped one never says so
        self._store(pieces, stop)
        if stop.is_set():
            return
        for block, entry in entries:
            with self.lock:
                self.index.set_block(block, entry)

    def _piece(self, connection, offset: int, length: int, pieces: list,
               stop: threading.Event) -> str | None:
        """Read a block or a range of one; its digest (None for zeros), queued for storing."""
        self.throttle.consume(length, stop)
        data = connection.read(offset, length)
        # Progress counts bytes read: the sending that follows is bounded by the batch.
        self.counters.add(bytes_read=len(data), bytes_done=len(data))
        if is_zero(data):
            self.counters.add(zero_bytes=len(data))
            return None
        digest = block_digest(data, self.key)
        pieces.append((digest, data))
        return digest

    def _store(self, pieces: list[tuple[str, bytes]], stop: threading.Event) -> None:
        to_send = self._claim_missing(pieces)
        for digest, data in pieces:
            if stop.is_set():
                return
            if digest in to_send:
                to_send.discard(digest)  # a piece repeated within the batch goes once
                # blocks_sent and blocks_deduplicated count chunks: a patch is one.
                parts = encode_chunk_parts(data, self.key)
                stored = self.mover.put_chunk(digest, parts)
                size = sum(len(part) for part in parts)
                self.counters.add(bytes_sent=size, blocks_sent=1, bytes_stored=size if stored else 0)
            else:
                self.counters.add(blocks_deduplicated=1)

    def _claim_missing(self, pieces: list[tuple[str, bytes]]) -> set[str]:
        """Digests this thread must send: unknown to the data mover and not sent by another thread."""
        with self.lock:
            candidates = {digest for digest, _ in pieces if digest not in self.claimed}
        missing = set(self.mover.missing(sorted(candidates))) if candidates else set()
        with self.lock:
            mine = missing - self.claimed
            self.claimed |= candidates
        return mine


def _spans(batch: list[Item], size: int) -> list[tuple[int, int]]:
    """The (offset, length) of each piece a batch reads, in the order it reads them."""
    spans = []
    for block, ranges in batch:
        start = block * BLOCK_SIZE
        spans += [(start, block_length(size, block))] if ranges is None else \
            [(start + offset, length) for offset, length in ranges]
    return spans


class _BatchReads:
    """A batch's reads from one connection: pieces that follow each other on the disk (a run
    of guest writes across a block boundary) come in one request of at most a block, and are
    handed out one by one, as ``read(offset, length)`` asks for them in the batch's order."""

    def __init__(self, connection, spans: list[tuple[int, int]], counters: Counters):
        self.connection, self.counters = connection, counters
        self.groups: dict[int, list[tuple[int, int]]] = {}  # first piece's offset -> the pieces
        group: list[tuple[int, int]] = []
        for offset, length in spans:
            end = group[-1][0] + group[-1][1] if group else None
            if end == offset and offset + length - group[0][0] <= BLOCK_SIZE:
                group.append((offset, length))
                continue
            if len(group) > 1:
                self.groups[group[0][0]] = group
            group = [(offset, length)]
        if len(group) > 1:
            self.groups[group[0][0]] = group
        self.ready: dict[int, bytes] = {}

    def read(self, offset: int, length: int) -> bytes:
        if offset in self.ready:
            return self.ready.pop(offset)
        group = self.groups.get(offset)
        self.counters.add(read_requests=1)
        if group is None:
            return self.connection.read(offset, length)
        data = self.connection.read(offset, sum(n for _, n in group))
        for start, n in group:
            self.ready[start] = data[start - offset:start - offset + n]
        return self.ready.pop(offset)


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
    if base is not None:
        index = incremental_disk(base, size)
        index.name, index.format = disk_name or base.name, disk_format or base.format
        plan = partial(incremental_plan, extents, base, size)
    else:
        index = DiskIndex(id=disk_id, size=size, name=disk_name, format=disk_format)
        plan = partial(full_plan, extents)
    counters = Counters()
    total = plan_bytes(plan(), size)
    supervisor = Supervisor(monitor, counters, total)
    job = _DiskBackup(source, mover, key, index, _PlanQueue(plan(), supervisor.all_read), counters,
                      Throttle(max_rate))
    if total:  # an incremental of an unchanged disk opens no more connections
        supervisor.run(job.loop, max(1, connections), name=f"backup-{disk_id[:8]}")
    return BackupResult(index, _figures(counters, size, total, supervisor.seconds(), context))


def _extents(source: ImageioClient, context: str) -> list[dict]:
    with source.connect() as connection:
        return connection.extents(context)


def _figures(counters: Counters, size: int, planned: int, seconds: float, context: str) -> dict:
    values = counters.snapshot()
    figures = {name: values.get(name, 0) for name in (
        "bytes_read", "bytes_sent", "bytes_stored", "zero_bytes", "blocks_read", "blocks_sent",
        "blocks_deduplicated", "blocks_patched", "read_requests", "retried_requests")}
    # A full backup skips the zero extents without reading them: they count as zero bytes too.
    if context == "zero":
        figures["zero_bytes"] += size - planned
    figures.update(size=size, seconds=round(seconds, 3), extents_context=context)
    return figures
