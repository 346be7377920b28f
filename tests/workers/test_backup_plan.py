"""Which blocks a disk backup reads: pure functions of the transfer's extents and the base index."""

from repositories.store import BLOCK_SIZE, DiskIndex
from workers.runtime.backup import block_runs, incremental_runs, run_bytes

MIB = 1024 * 1024


def extent(start: int, length: int, **flags) -> dict:
    return {"start": start, "length": length, **flags}


def test_a_full_reads_every_block_that_holds_data_and_merges_neighbours():
    extents = [extent(0, MIB), extent(MIB, 9 * MIB, zero=True), extent(10 * MIB, 3 * MIB),
               extent(13 * MIB, 7 * MIB, zero=True)]
    assert block_runs(extents, "data") == [(0, 0), (2, 3)]
    assert run_bytes([(0, 0), (2, 3)], 20 * MIB) == 3 * BLOCK_SIZE


def test_an_incremental_reads_the_blocks_touching_dirty_extents_only():
    base = DiskIndex(id="d", size=16 * MIB, blocks=["a" * 64] * 4)
    extents = [extent(0, 5 * MIB), extent(5 * MIB, 64 * 1024, dirty=True), extent(5 * MIB + 64 * 1024, 11 * MIB - 64 * 1024)]
    assert incremental_runs(extents, base, 16 * MIB) == [(1, 1)]


def test_a_grown_disk_reads_the_base_short_last_block_again():
    # 10 MiB: the third block was stored 2 MiB long; at 12 MiB it is a whole block.
    base = DiskIndex(id="d", size=10 * MIB, blocks=["a" * 64, "b" * 64, "c" * 64])
    clean = [extent(0, 12 * MIB)]
    assert incremental_runs(clean, base, 12 * MIB) == [(2, 2)]
    assert run_bytes([(2, 2)], 12 * MIB) == 4 * MIB
    dirty_head = [extent(0, MIB, dirty=True), extent(MIB, 11 * MIB)]
    assert incremental_runs(dirty_head, base, 12 * MIB) == [(0, 0), (2, 2)]
    # A base that ended on a block boundary, or a disk that didn't grow, adds nothing.
    whole = DiskIndex(id="d", size=8 * MIB, blocks=["a" * 64, "b" * 64])
    assert incremental_runs(clean, whole, 12 * MIB) == []
    assert incremental_runs([extent(0, 10 * MIB)], base, 10 * MIB) == []
