"""Patched blocks: a block's changed ranges stored over its base, in the index and read back."""

import json

import pytest

from repositories.store import (
    BLOCK_SIZE,
    DiskIndex,
    ManifestError,
    block_digest,
    build_manifest,
    parse_manifest,
    serialize_manifest,
)
from repositories.store.patches import compose, patched, read_entry

KIB, MIB = 1024, 1024 * 1024


def chunks_of(*blocks: bytes) -> dict[str, bytes]:
    return {block_digest(data): data for data in blocks}


def reader(store: dict[str, bytes]):
    def read(digest: str, length: int) -> bytes:
        assert len(store[digest]) == length
        return store[digest]
    return read


def test_patches_are_written_over_the_base_in_order():
    base = bytes([1]) * BLOCK_SIZE
    first, second = bytes([2]) * (128 * KIB), bytes([3]) * (64 * KIB)
    store = chunks_of(base, first, second)
    entry = patched(block_digest(base), [(0, 128 * KIB, block_digest(first))])
    entry = patched(entry, [(64 * KIB, 64 * KIB, block_digest(second)), (BLOCK_SIZE - KIB, KIB, None)])
    block = compose(entry, BLOCK_SIZE, reader(store))
    expected = bytearray(base)
    expected[0:128 * KIB] = first
    expected[64 * KIB:128 * KIB] = second
    expected[BLOCK_SIZE - KIB:] = bytes(KIB)
    assert block == bytes(expected)
    # Over a zero block, the base is zeros.
    assert read_entry({"base": None, "patches": [[KIB, 64 * KIB, block_digest(second)]]}, 2 * KIB * 64,
                      reader(store)) == bytes(KIB) + second + bytes(63 * KIB)


def test_a_patch_covering_earlier_ones_replaces_them():
    entry = {"base": "a" * 64, "patches": [[0, 64 * KIB, "b" * 64], [MIB, 64 * KIB, "c" * 64]]}
    again = patched(entry, [(0, 128 * KIB, "d" * 64)])
    assert again == {"base": "a" * 64, "patches": [[MIB, 64 * KIB, "c" * 64], [0, 128 * KIB, "d" * 64]]}
    assert entry["patches"][0] == [0, 64 * KIB, "b" * 64]  # the base index is untouched
    # Zeros written over a zero block leave a zero block.
    assert patched(None, [(0, 64 * KIB, None)]) is None
    assert patched({"base": None, "patches": [[0, KIB, "b" * 64]]}, [(0, 64 * KIB, None)]) is None



def test_a_manifest_with_patched_blocks_survives_serialization_as_version_2():
    disk = DiskIndex(id="d", size=2 * BLOCK_SIZE)
    disk.set_block(0, "a" * 64)
    disk.set_block(1, {"base": "a" * 64, "patches": [[0, KIB, "b" * 64], [KIB, KIB, None]]})
    stored = serialize_manifest(build_manifest("rp", "vm", [disk]))
    assert json.loads(stored)["version"] == 2
    again = parse_manifest(stored)
    assert again.disk("d").blocks == disk.blocks
    assert again.digests() == {"a" * 64, "b" * 64}
    assert again.allocated_bytes() == 2 * BLOCK_SIZE
    # Without a patched block, a manifest stays version 1: older readers take it.
    plain = DiskIndex(id="d", size=BLOCK_SIZE, blocks=["a" * 64])
    assert json.loads(serialize_manifest(build_manifest("rp", "vm", [plain])))["version"] == 1


@pytest.mark.parametrize("entry, message", [
    ({"base": "a" * 64}, "bad index entry"),
    ({"base": "a" * 64, "patches": []}, "list of patches"),
    ({"base": "nothex", "patches": [[0, 1, None]]}, "bad chunk id"),
    ({"base": None, "patches": [[0, 1, "nothex"]]}, "bad chunk id"),
    ({"base": None, "patches": [[BLOCK_SIZE - 1, 2, None]]}, "outside the block"),
    ({"base": None, "patches": [[-1, 2, None]]}, "outside the block"),
    ({"base": None, "patches": [[0, 0, None]]}, "outside the block"),
    ({"base": None, "patches": [[0, True, None]]}, "bad patch"),
    ({"base": None, "patches": [[0, 1]]}, "bad patch"),
    (["a" * 64], "bad index entry"),
])
def test_malformed_patched_blocks_are_refused(entry, message):
    raw = json.loads(serialize_manifest(build_manifest("rp", "vm", [DiskIndex(id="d", size=BLOCK_SIZE)])))
    raw["disks"][0]["blocks"][0] = entry
    with pytest.raises(ManifestError, match=message):
        parse_manifest(json.dumps(raw))


def test_a_version_1_manifest_with_patched_blocks_is_refused():
    disk = DiskIndex(id="d", size=BLOCK_SIZE)
    disk.set_block(0, {"base": "a" * 64, "patches": [[0, KIB, None]]})
    raw = json.loads(serialize_manifest(build_manifest("rp", "vm", [disk])))
    raw["version"] = 1
    with pytest.raises(ManifestError, match="version 1"):
        parse_manifest(json.dumps(raw))
