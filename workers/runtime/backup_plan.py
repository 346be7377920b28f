"""What a disk backup reads: pure functions of the transfer's extents and the base index.

A plan is a sequence of items ``(block, ranges)`` in block order: ``ranges`` is
None to read the whole block, or the ``(offset, length)`` ranges within the
block to read and store as patches over the base's block (see
repositories/store/patches.py). A full reads every block that holds data, whole.
An incremental reads the blocks touching a dirty extent: only the dirty ranges
while they are few and small, else the whole block.

Plans are generators, not lists, so they stay small on disks of many terabytes.
"""

from __future__ import annotations

from collections.abc import Iterator

from repositories.store import BLOCK_SIZE, DiskIndex, block_count, block_length
from repositories.store.patches import MAX_PATCHED_FRACTION, MAX_PATCHES, Entry, merged_patches

Ranges = list[tuple[int, int]]
Item = tuple[int, Ranges | None]
# Dirty ranges this close are read as one: a request and a chunk cost more than
# reading the clean bytes between them (the dirty bitmap's granularity is 64 KiB).
MERGE_GAP = 256 * 1024


def block_runs(extents: list[dict], wanted: str) -> list[tuple[int, int]]:
    """Runs of block indexes [first, last] touching an extent to read, merged and in order.

    ``wanted`` is "data" (extents that aren't zero) or "dirty".
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


def run_bytes(runs: list[tuple[int, int]], size: int) -> int:
    """Bytes covered by block runs of a disk of ``size`` bytes."""
    total = 0
    for first, last in runs:
        total += (last - first + 1) * BLOCK_SIZE
        if last == block_count(size) - 1:
            total -= BLOCK_SIZE - block_length(size, last)
    return total


def full_plan(extents: list[dict]) -> Iterator[Item]:
    """Every block holding an extent that isn't zero, whole."""
    for first, last in block_runs(extents, "data"):
        for block in range(first, last + 1):
            yield block, None


def dirty_ranges(extents: list[dict], size: int) -> Iterator[tuple[int, Ranges]]:
    """Per block touching a dirty extent, in order: its dirty ranges (offsets within the block)."""
    current, ranges = None, []
    for extent in extents:
        if not extent.get("dirty", False):
            continue
        start = int(extent["start"])
        end = min(start + int(extent["length"]), size)
        while start < end:
            block = start // BLOCK_SIZE
            stop = min((block + 1) * BLOCK_SIZE, end)
            if block != current:
                if current is not None:
                    yield current, ranges
                current, ranges = block, []
            _add_range(ranges, start - block * BLOCK_SIZE, stop - start)
            start = stop
    if current is not None:
        yield current, ranges


def _add_range(ranges: Ranges, offset: int, length: int) -> None:
    if ranges and offset - (ranges[-1][0] + ranges[-1][1]) <= MERGE_GAP:
        first = ranges[-1][0]
        ranges[-1] = (first, max(ranges[-1][0] + ranges[-1][1], offset + length) - first)
    else:
        ranges.append((offset, length))


def incremental_plan(extents: list[dict], base: DiskIndex, size: int) -> Iterator[Item]:
    """The blocks touching a dirty extent, as patches or whole; and the base's short last
    block, whole, when the disk grew past it.

    A grown disk's new area isn't dirty unless the guest wrote there, but the
    base's last block was stored short: kept as it is, it would no longer fill
    its block, so it is read again at its new length.
    """
    tail = None
    if size > base.size and base.size % base.block_size:
        tail = base.size // base.block_size
    for block, ranges in _with_tail(dirty_ranges(extents, size), tail):
        previous = base.blocks[block] if block < len(base.blocks) else None
        if block == tail or not _patchable(ranges, block_length(size, block), previous):
            yield block, None
        else:
            yield block, ranges


def _with_tail(blocks: Iterator[tuple[int, Ranges]], tail: int | None) -> Iterator[tuple[int, Ranges]]:
    for block, ranges in blocks:
        if tail is not None and tail < block:
            yield tail, []
            tail = None
        if block == tail:
            tail = None
        yield block, ranges
    if tail is not None:
        yield tail, []


def _patchable(ranges: Ranges, length: int, previous: Entry) -> bool:
    """Whether the changes of a block are worth storing as patches over ``previous``."""
    if sum(size for _, size in ranges) > MAX_PATCHED_FRACTION * length:
        return False
    placeholders = [(offset, size, None) for offset, size in ranges]
    return len(merged_patches(previous, placeholders)) <= MAX_PATCHES


def plan_bytes(plan: Iterator[Item], size: int) -> int:
    """The bytes a plan reads."""
    return sum(block_length(size, block) if ranges is None else sum(n for _, n in ranges)
               for block, ranges in plan)
