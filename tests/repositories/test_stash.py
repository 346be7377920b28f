"""A large disk index carried through the repository instead of a task's database row."""

import pytest

from repositories.store import (
    BLOCK_SIZE,
    ChunkStore,
    DiskIndex,
    ManifestError,
    derive_key,
    new_kdf_parameters,
)
from repositories.store.stash import stash_index, unstash_index


def big_index(blocks: int) -> dict:
    disk = DiskIndex(id="d", size=blocks * BLOCK_SIZE)
    for number in range(0, blocks, 3):
        disk.set_block(number, f"{number:064x}")
    disk.set_block(1, {"base": None, "patches": [[0, 4096, "f" * 64]]})
    return disk.to_dict()


@pytest.mark.parametrize("encrypted", [False, True])
def test_an_index_past_the_limit_goes_as_chunks_and_comes_back_whole(tmp_path, encrypted):
    parameters = new_kdf_parameters()
    key = derive_key("stash passphrase", parameters) if encrypted else None
    store = ChunkStore.create(tmp_path / "repo", key=key, kdf_parameters=parameters if encrypted else None)
    index = big_index(200_000)  # 5 MB of JSON: two chunks
    result = stash_index(store, key, index, inline_limit=1024)
    assert len(result["index_chunks"]) == -(-result["index_bytes"] // BLOCK_SIZE) == 2
    # What a server older than the worker reads instead fails its int(size), never makes zeros.
    with pytest.raises(ValueError):
        int(result["index"]["size"])
    assert store.missing(result["index_chunks"]) == []
    assert unstash_index(store, key, result) == index
    # Small ones stay inline, as before.
    small = big_index(10)
    assert stash_index(store, key, small, inline_limit=1024 * 1024) == {"index": small}
    assert unstash_index(store, key, {"index": small}) == small


def test_an_index_read_back_short_is_refused(tmp_path):
    store = ChunkStore.create(tmp_path / "repo")
    result = stash_index(store, None, big_index(100_000), inline_limit=1024)
    result["index_bytes"] += 1
    with pytest.raises(ManifestError, match="index read back"):
        unstash_index(store, None, result)
