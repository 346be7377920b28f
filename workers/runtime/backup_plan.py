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
from repositories.store.patches import (
    MAX_PATCHED_FRACTION,
    MAX_PATCHES,
    Entry,
    is_patched,
    merged_patches,
)
from workers.runtime.common import MoverError

Ranges = list[tuple[int, int]]
Item = tuple[int, Ranges | None]
# Dirty ranges this close are read as one: a request and a chunk cost more than
# reading the clean bytes between them (the dirty bitmap's granularity is 64 KiB).
MERGE_GAP = 256 * 1024
# At most one block in PATCHED_SHARE of a disk (but always MIN_PATCHED_BLOCKS) stays
# patched: a patched index entry takes up to 11x a plain one, and the index goes
# through the database and into the manifest (a 4 TiB disk: 66 MB of entries, at most
# 49 MB more for its patched ones).
PATCHED_SHARE = 16
MIN_PATCHED_BLOCKS = 256


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


def full_plan(extents: list[dict]) -> Iterator[Item]:
    """Every block holding an extent that isn't zero, whole."""
    for first, last in block_runs(extents, "data"):
        for block in range(first, last + 1):
            yield block, None


def dirty_ranges(extents: list[dict], size: int) -> Iterator[tuple[int, Ranges]]:
    """Per block touching a dirty extent, in order: its dirty ranges (offsets within the block).

    imageio serves extents in order without overlap; anything else is refused, since a
    block planned twice would be patched twice over the same base (one losing the other).
    """
    current, ranges, position = None, [], 0
    for extent in extents:
        start = int(extent["start"])
        end = min(start + int(extent["length"]), size)
        if start < position:
            raise MoverError(f"imageio returned extents out of order (one starts at {start}, "
                             f"after one ending at {position}): the disk can't be read safely")
        position = max(position, start + int(extent["length"]))
        if not extent.get("dirty", False):
            continue
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
    """The blocks touching a dirty extent, as patches or whole; and a block whose length
    changed with the disk's size, whole.

    A grown disk's new area isn't dirty unless the guest wrote there, but the
    base's last block was stored short: kept as it is, it would no longer fill
    its block, so it is read again at its new length. The same holds for the new
    last block of a disk that shrank.
    """
    resized = _resized_blocks(base, size)
    budget = max(MIN_PATCHED_BLOCKS, block_count(size) // PATCHED_SHARE)
    patched_now = base.patched_blocks()
    for block, ranges in _with_blocks(dirty_ranges(extents, size), resized):
        previous = base.blocks[block] if block < len(base.blocks) else None
        whole = (block in resized or not _patchable(ranges, block_length(size, block), previous)
                 or (not is_patched(previous) and patched_now >= budget))
        if whole == is_patched(previous):
            patched_now += -1 if whole else 1
        yield block, None if whole else ranges


def _resized_blocks(base: DiskIndex, size: int) -> list[int]:
    """Blocks of both the base and the disk whose length differs between them (the last ones)."""
    common = min(block_count(base.size, base.block_size), block_count(size))
    lasts = sorted({block_count(base.size, base.block_size) - 1, block_count(size) - 1})
    return [block for block in lasts if 0 <= block < common
            and block_length(size, block) != block_length(base.size, block, base.block_size)]


def _with_blocks(blocks: Iterator[tuple[int, Ranges]], extra: list[int]) -> Iterator[tuple[int, Ranges]]:
    """``blocks`` with the ``extra`` block indexes (sorted) merged in, in order, each once."""
    pending = list(extra)
    for block, ranges in blocks:
        while pending and pending[0] < block:
            yield pending.pop(0), []
        if pending and pending[0] == block:
            pending.pop(0)
        yield block, ranges
    for block in pending:
        yield block, []


def _patchable(ranges: Ranges, length: int, previous: Entry) -> bool:
    """Whether the changes of a block are worth storing as patches over ``previous``: few,
    and covering (with the patches it keeps) at most MAX_PATCHED_FRACTION of the block."""
    merged = merged_patches(previous, [(offset, size, None) for offset, size in ranges])
    return (len(merged) <= MAX_PATCHES
            and sum(size for _, size, _ in merged) <= MAX_PATCHED_FRACTION * length)


def plan_bytes(plan: Iterator[Item], size: int) -> int:
    """The bytes a plan reads."""
    return sum(block_length(size, block) if ranges is None else sum(n for _, n in ranges)
               for block, ranges in plan)
