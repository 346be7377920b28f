"""Which blocks a disk backup reads: pure functions of the transfer's extents and the base index."""

import pytest

from repositories.store import BLOCK_SIZE, DiskIndex
from repositories.store.patches import MAX_PATCHES
from workers.runtime.backup_plan import (
    MIN_PATCHED_BLOCKS,
    block_runs,
    dirty_ranges,
    full_plan,
    incremental_plan,
    plan_bytes,
)
from workers.runtime.common import MoverError

MIB = 1024 * 1024


def extent(start: int, length: int, **flags) -> dict:
    return {"start": start, "length": length, **flags}


def test_a_full_reads_every_block_that_holds_data_and_merges_neighbours():
    extents = [extent(0, MIB), extent(MIB, 9 * MIB, zero=True), extent(10 * MIB, 3 * MIB),
               extent(13 * MIB, 7 * MIB, zero=True)]
    assert block_runs(extents, "data") == [(0, 0), (2, 3)]
    assert plan_bytes(full_plan(extents), 20 * MIB) == 3 * BLOCK_SIZE


def incremental_runs(extents, base, size):
    """The blocks an incremental plan reads (patched or whole), as merged runs."""
    runs = []
    for block, _ in incremental_plan(extents, base, size):
        if runs and runs[-1][1] == block - 1:
            runs[-1] = (runs[-1][0], block)
        else:
            runs.append((block, block))
    return runs


def test_an_incremental_reads_the_blocks_touching_dirty_extents_only():
    base = DiskIndex(id="d", size=16 * MIB, blocks=["a" * 64] * 4)
    extents = [extent(0, 5 * MIB), extent(5 * MIB, 64 * 1024, dirty=True), extent(5 * MIB + 64 * 1024, 11 * MIB - 64 * 1024)]
    assert incremental_runs(extents, base, 16 * MIB) == [(1, 1)]


def test_an_incremental_reads_small_changes_as_ranges_and_large_ones_whole():
    base = DiskIndex(id="d", size=16 * MIB, blocks=["a" * 64] * 4)
    extents = [extent(0, 3 * MIB + 64 * 1024, dirty=True),          # block 0: 3 MiB + 64 KiB, whole
               extent(3 * MIB + 64 * 1024, 2 * MIB - 64 * 1024),
               extent(5 * MIB, MIB, dirty=True),                      # block 1: one 1 MiB range
               extent(6 * MIB, 5 * MIB),
               extent(11 * MIB, 2 * MIB, dirty=True),                 # blocks 2 and 3: 1 MiB each
               extent(13 * MIB, 3 * MIB)]
    plan = list(incremental_plan(extents, base, 16 * MIB))
    assert plan == [(0, None), (1, [(MIB, MIB)]), (2, [(3 * MIB, MIB)]), (3, [(0, MIB)])]
    assert plan_bytes(iter(plan), 16 * MIB) == 4 * MIB + 3 * MIB


def test_close_dirty_ranges_are_read_as_one():
    kib = 1024
    extents = [extent(0, 64 * kib, dirty=True), extent(64 * kib, 192 * kib),   # gap of 192 KiB: merged
               extent(256 * kib, 64 * kib, dirty=True), extent(320 * kib, 704 * kib),  # gap 704 KiB: not
               extent(MIB, 64 * kib, dirty=True), extent(MIB + 64 * kib, 3 * MIB - 64 * kib)]
    assert list(dirty_ranges(extents, 4 * MIB)) == [(0, [(0, 320 * kib), (MIB, 64 * kib)])]


def test_a_block_with_many_patches_is_read_whole_again():
    patch = [0, 64 * 1024, "b" * 64]
    crowded = {"base": "a" * 64, "patches": [[i * MIB // 2, 64 * 1024, "b" * 64] for i in range(MAX_PATCHES)]}
    base = DiskIndex(id="d", size=8 * MIB, blocks=[crowded, {"base": None, "patches": [patch]}])
    extents = [extent(0, 64 * 1024), extent(64 * 1024, 64 * 1024, dirty=True), extent(128 * 1024, 4 * MIB - 128 * 1024),
               extent(4 * MIB, 64 * 1024, dirty=True), extent(4 * MIB + 64 * 1024, 4 * MIB - 64 * 1024)]
    # Block 0 would get a ninth patch: whole. Block 1's new patch covers its old one: it replaces it.
    assert list(incremental_plan(extents, base, 8 * MIB)) == [(0, None), (1, [(0, 64 * 1024)])]


def test_a_grown_disk_reads_the_base_short_last_block_again():
    # 10 MiB: the third block was stored 2 MiB long; at 12 MiB it is a whole block.
    base = DiskIndex(id="d", size=10 * MIB, blocks=["a" * 64, "b" * 64, "c" * 64])
    clean = [extent(0, 12 * MIB)]
    assert list(incremental_plan(clean, base, 12 * MIB)) == [(2, None)]
    assert plan_bytes(incremental_plan(clean, base, 12 * MIB), 12 * MIB) == 4 * MIB
    dirty_head = [extent(0, MIB, dirty=True), extent(MIB, 11 * MIB)]
    assert list(incremental_plan(dirty_head, base, 12 * MIB)) == [(0, [(0, MIB)]), (2, None)]
    # A small change in that short block still reads it whole, at its new length.
    dirty_tail = [extent(0, 9 * MIB), extent(9 * MIB, 64 * 1024, dirty=True), extent(9 * MIB + 64 * 1024, 3 * MIB - 64 * 1024)]
    assert list(incremental_plan(dirty_tail, base, 12 * MIB)) == [(2, None)]
    # A base that ended on a block boundary, or a disk that didn't grow, adds nothing.
    whole = DiskIndex(id="d", size=8 * MIB, blocks=["a" * 64, "b" * 64])
    assert incremental_runs(clean, whole, 12 * MIB) == []
    assert incremental_runs([extent(0, 10 * MIB)], base, 10 * MIB) == []


def test_a_shrunk_disk_reads_its_new_short_last_block_whole():
    # 12 MiB, then 10 MiB: block 2 held 4 MiB and now holds 2, even where nothing changed.
    base = DiskIndex(id="d", size=12 * MIB, blocks=["a" * 64, "b" * 64, "c" * 64])
    clean = [extent(0, 10 * MIB)]
    assert list(incremental_plan(clean, base, 10 * MIB)) == [(2, None)]
    small_change = [extent(0, 9 * MIB), extent(9 * MIB, 64 * 1024, dirty=True), extent(9 * MIB + 64 * 1024, MIB - 64 * 1024)]
    assert list(incremental_plan(small_change, base, 10 * MIB)) == [(2, None)]
    # Shrunk to a block boundary: the blocks left keep their length.
    assert list(incremental_plan([extent(0, 8 * MIB)], base, 8 * MIB)) == []


def test_patches_a_block_keeps_count_towards_the_half_block_limit():
    kept = {"base": "a" * 64, "patches": [[0, 2 * MIB - 64 * 1024, "b" * 64]]}
    base = DiskIndex(id="d", size=4 * MIB, blocks=[kept])
    near = [extent(0, 3 * MIB), extent(3 * MIB, 64 * 1024, dirty=True), extent(3 * MIB + 64 * 1024, MIB - 64 * 1024)]
    assert list(incremental_plan(near, base, 4 * MIB)) == [(0, [(3 * MIB, 64 * 1024)])]
    more = [extent(0, 3 * MIB), extent(3 * MIB, 128 * 1024, dirty=True), extent(3 * MIB + 128 * 1024, MIB - 128 * 1024)]
    assert list(incremental_plan(more, base, 4 * MIB)) == [(0, None)]


def test_a_disk_keeps_a_bounded_number_of_patched_blocks():
    blocks = MIN_PATCHED_BLOCKS + 10
    size = blocks * BLOCK_SIZE
    base = DiskIndex(id="d", size=size, blocks=["a" * 64] * blocks)
    extents = []
    for block in range(blocks):  # 64 KiB dirty at the start of every block
        extents += [extent(block * BLOCK_SIZE, 64 * 1024, dirty=True),
                    extent(block * BLOCK_SIZE + 64 * 1024, BLOCK_SIZE - 64 * 1024)]
    plan = list(incremental_plan(extents, base, size))
    assert sum(1 for _, ranges in plan if ranges) == MIN_PATCHED_BLOCKS
    assert all(ranges is None for _, ranges in plan[MIN_PATCHED_BLOCKS:])
    # A patched block read whole frees its place for another.
    base.blocks[0] = {"base": "a" * 64, "patches": [[0, 64 * 1024, None]]}
    whole_first = [extent(0, 3 * MIB, dirty=True), extent(3 * MIB, MIB)] + extents[2:]
    plan = list(incremental_plan(whole_first, base, size))
    assert plan[0] == (0, None)
    assert sum(1 for _, ranges in plan if ranges) == MIN_PATCHED_BLOCKS


def test_extents_out_of_order_are_refused():
    with pytest.raises(MoverError, match="out of order"):
        list(dirty_ranges([extent(4 * MIB, MIB, dirty=True), extent(0, MIB, dirty=True)], 8 * MIB))
