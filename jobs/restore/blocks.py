"""Reading a disk's blocks back from a repository, in order, with bounded memory.

Chunks are fetched and decoded by a few threads (the data mover answers one
request per connection at a time, and zstd and AES release the GIL), but at
most ``window`` blocks are held at once, so memory stays near
``window × 4 MiB`` whatever the disk's size.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from repositories.store import ChunkError, DiskIndex, block_length, decode_named
from repositories.store.patches import read_entry

DEFAULT_THREADS = 4
DEFAULT_WINDOW = 8
# The granularity at which zero runs inside a stored block are skipped, so an
# exported file stays sparse where the guest left zeros (qcow2's cluster size).
ZERO_GRANULE = 64 * 1024
_ZERO_GRANULE_BYTES = bytes(ZERO_GRANULE)


@dataclass(frozen=True)
class Block:
    """One stored block of a disk: its index, offset and plain bytes."""

    index: int
    offset: int
    data: bytes


def _fetch(client, disk: DiskIndex, index: int, key) -> Block:
    length = block_length(disk.size, index, disk.block_size)
    # Every chunk is checked against its name: a damaged or wrong chunk must never be
    # written into a disk silently.
    try:
        data = read_entry(disk.blocks[index], length,
                          lambda digest, size: decode_named(client.get_chunk(digest), digest, key, size))
    except ChunkError as exc:
        raise ChunkError(f"block {index} of disk {disk.id}: {exc}") from None
    return Block(index, index * disk.block_size, data)


def read_blocks(client, disk: DiskIndex, key=None, *, threads: int = DEFAULT_THREADS,
                window: int = DEFAULT_WINDOW) -> Iterator[Block]:
    """Yield every stored (non-zero) block of the disk in order; zero blocks are skipped."""
    indexes = iter([i for i, entry in enumerate(disk.blocks) if entry is not None])
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="restore-read") as pool:
        pending: deque = deque()
        try:
            for index in indexes:
                pending.append(pool.submit(_fetch, client, disk, index, key))
                if len(pending) >= window:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for future in pending:
                future.cancel()


def data_runs(block: Block, granule: int = ZERO_GRANULE) -> Iterator[tuple[int, memoryview]]:
    """The runs of a block that aren't all zeros, as (disk offset, bytes), zero granules skipped."""
    view = memoryview(block.data)
    start = None
    for position in range(0, len(view), granule):
        piece = view[position:position + granule]
        zero = piece == _ZERO_GRANULE_BYTES[:len(piece)]
        if zero and start is not None:
            yield block.offset + start, view[start:position]
            start = None
        elif not zero and start is None:
            start = position
    if start is not None:
        yield block.offset + start, view[start:]
