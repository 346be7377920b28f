"""Which blocks a disk backup reads: pure functions of the transfer's extents and the base index."""

from repositories.store import BLOCK_SIZE, DiskIndex
from repositories.store.patches import MAX_PATCHES
from workers.runtime.backup_plan import (
    block_runs,
    dirty_ranges,
    incremental_plan,
    plan_bytes,
    run_bytes,
)

MIB = 1024 * 1024


def extent(start: int, length: int, **flags) -> dict:
    return {"start": start, "length": length, **flags}


def test_a_full_reads_every_block_that_holds_data_and_merges_neighbours():
    extents = [extent(0, MIB), extent(MIB, 9 * MIB, zero=True), extent(10 * MIB, 3 * MIB),
               extent(13 * MIB, 7 * MIB, zero=True)]
    assert block_runs(extents, "data") == [(0, 0), (2, 3)]
    assert run_bytes([(0, 0), (2, 3)], 20 * MIB) == 3 * BLOCK_SIZE


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
    assert run_bytes([(2, 2)], 12 * MIB) == 4 * MIB
    dirty_head = [extent(0, MIB, dirty=True), extent(MIB, 11 * MIB)]
    assert list(incremental_plan(dirty_head, base, 12 * MIB)) == [(0, [(0, MIB)]), (2, None)]
    # A small change in that short block still reads it whole, at its new length.
    dirty_tail = [extent(0, 9 * MIB), extent(9 * MIB, 64 * 1024, dirty=True), extent(9 * MIB + 64 * 1024, 3 * MIB - 64 * 1024)]
    assert list(incremental_plan(dirty_tail, base, 12 * MIB)) == [(2, None)]
    # A base that ended on a block boundary, or a disk that didn't grow, adds nothing.
    whole = DiskIndex(id="d", size=8 * MIB, blocks=["a" * 64, "b" * 64])
    assert incremental_runs(clean, whole, 12 * MIB) == []
    assert incremental_runs([extent(0, 10 * MIB)], base, 10 * MIB) == []
