"""The disk index a session driver takes from a worker's result before it writes the manifest."""

from types import SimpleNamespace

import pytest

from jobs.driver.restore_points import disk_index_of
from repositories.store import BLOCK_SIZE, ManifestError


def work_with(result: dict):
    disk = SimpleNamespace(id="disk-1", name="web01_os", format="cow")
    return SimpleNamespace(disk=disk, task=SimpleNamespace(result=result))


def test_a_result_without_its_block_index_never_makes_an_all_zero_restore_point():
    for result in ({"size": 2 * BLOCK_SIZE}, {"size": 2 * BLOCK_SIZE, "index": {"size": 2 * BLOCK_SIZE}}):
        with pytest.raises(ManifestError, match="no block index"):
            disk_index_of(work_with(result), "cp-1")
    for result in ({"index": {"size": 2 * BLOCK_SIZE, "blocks": []}},
                   {"size": 2 * BLOCK_SIZE, "index": {"blocks": []}}):
        with pytest.raises(ManifestError, match="needs 2 index entries"):
            disk_index_of(work_with(result), "cp-1")


def test_a_result_with_its_index_gives_the_disk_index():
    index = disk_index_of(work_with({"index": {"size": 2 * BLOCK_SIZE, "blocks": ["a" * 64, None]}}), "cp-1")
    assert (index.id, index.blocks, index.checkpoint_id) == ("disk-1", ["a" * 64, None], "cp-1")
    with pytest.raises(ManifestError, match="unusable"):
        disk_index_of(work_with({"index": {"size": 2 * BLOCK_SIZE, "blocks": ["a" * 64]}}), "cp-1")
