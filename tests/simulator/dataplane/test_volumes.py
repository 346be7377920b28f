"""Volumes: deterministic seeds, guest writes, snapshot layers and their merge."""

import pytest

from simulator.dataplane import DataPlane, DataPlaneError

from .conftest import MiB, guest_bytes, qemu_img_compare

SIZE = 16 * MiB


@pytest.fixture
def plane(tmp_path, pki) -> DataPlane:
    """Volume operations need no daemon."""
    return DataPlane(tmp_path / "state", tls=pki)


@pytest.mark.parametrize("fmt", ["raw", "cow"])
def test_the_same_seed_gives_the_same_bytes(plane, tmp_path, fmt):
    plane.seed_volume(tmp_path / "a", fmt, SIZE, seed=7, allocated_fraction=0.5)
    plane.seed_volume(tmp_path / "b", fmt, SIZE, seed=7, allocated_fraction=0.5)
    plane.seed_volume(tmp_path / "c", fmt, SIZE, seed=8, allocated_fraction=0.5)

    assert qemu_img_compare(tmp_path / "a", tmp_path / "b").returncode == 0
    assert qemu_img_compare(tmp_path / "a", tmp_path / "c").returncode == 1


def test_a_raw_and_a_cow_seed_hold_the_same_guest_data(plane, tmp_path):
    plane.seed_volume(tmp_path / "a.raw", "raw", SIZE, seed=7, allocated_fraction=0.5)
    plane.seed_volume(tmp_path / "a.cow", "cow", SIZE, seed=7, allocated_fraction=0.5)

    assert qemu_img_compare(tmp_path / "a.raw", tmp_path / "a.cow").returncode == 0
    assert plane.volume_info(tmp_path / "a.cow")["format"] == "cow"


def test_a_seed_is_sparse_and_mixes_zero_text_and_random_data(plane, tmp_path):
    volume = tmp_path / "disk.raw"
    plane.seed_volume(volume, "raw", 64 * MiB, seed=1, allocated_fraction=0.25)
    info = plane.volume_info(volume)
    data = guest_bytes(volume, tmp_path)

    assert info["virtual_size"] == 64 * MiB
    assert 12 * MiB <= info["actual_size"] <= 20 * MiB
    blocks = [data[i:i + MiB] for i in range(0, len(data), MiB)]
    text = [b for b in blocks if b.count(b" INFO ") > 100]
    noise = [b for b in blocks if any(b) and b.count(b" INFO ") == 0]
    assert text and noise
    assert len({bytes(b) for b in blocks if any(b)}) == len([b for b in blocks if any(b)])


@pytest.mark.parametrize("fmt", ["raw", "cow"])
def test_a_guest_write_changes_exactly_the_written_range(plane, tmp_path, fmt):
    volume = tmp_path / "disk"
    plane.seed_volume(volume, fmt, SIZE, seed=2, allocated_fraction=0.5)
    before = guest_bytes(volume, tmp_path)

    plane.guest_write(volume, fmt, 3 * MiB + 512, 100_000, seed=5)
    after = guest_bytes(volume, tmp_path)

    start, end = 3 * MiB + 512, 3 * MiB + 512 + 100_000
    assert after[:start] == before[:start]
    assert after[end:] == before[end:]
    changed = sum(1 for a, b in zip(after[start:end], before[start:end], strict=True) if a != b)
    assert changed > 99_000


def test_guest_writes_are_deterministic(plane, tmp_path):
    for name in ("a", "b"):
        plane.create_volume(tmp_path / name, "cow", SIZE)
        plane.guest_write(tmp_path / name, "cow", MiB, MiB, seed=4)
    assert qemu_img_compare(tmp_path / "a", tmp_path / "b").returncode == 0


def test_a_guest_write_beyond_the_disk_is_refused(plane, tmp_path):
    plane.create_volume(tmp_path / "disk", "raw", SIZE)
    with pytest.raises(DataPlaneError, match="beyond"):
        plane.guest_write(tmp_path / "disk", "raw", SIZE - 10, 20, seed=1)


def test_a_snapshot_layer_merges_down(plane, tmp_path):
    base, top = tmp_path / "base", tmp_path / "top"
    plane.seed_volume(base, "cow", SIZE, seed=3, allocated_fraction=0.5)
    plane.create_volume(top, "cow", SIZE, backing=base)
    plane.guest_write(top, "cow", 0, 2 * MiB, seed=6)
    guest_before = guest_bytes(top, tmp_path)
    assert plane.volume_info(top)["backing"] == str(base)

    plane.commit_volume(top, base)
    plane.delete_volume(top)

    assert guest_bytes(base, tmp_path) == guest_before


def test_a_middle_layer_merges_down_and_its_child_is_rebased(plane, tmp_path):
    base, middle, top = tmp_path / "base", tmp_path / "middle", tmp_path / "top"
    plane.seed_volume(base, "cow", SIZE, seed=3, allocated_fraction=0.5)
    plane.create_volume(middle, "cow", SIZE, backing=base)
    plane.guest_write(middle, "cow", MiB, MiB, seed=1)
    plane.create_volume(top, "cow", SIZE, backing=middle)
    plane.guest_write(top, "cow", 2 * MiB, MiB, seed=2)
    guest_before = guest_bytes(top, tmp_path)

    plane.commit_volume(middle, base, children=[top])
    plane.delete_volume(middle)

    assert plane.volume_info(top)["backing"] == str(base)
    assert guest_bytes(top, tmp_path) == guest_before


def test_bad_input_says_what_to_do(plane, tmp_path):
    with pytest.raises(DataPlaneError, match="raw.*cow"):
        plane.create_volume(tmp_path / "x", "vmdk", SIZE)
    plane.create_volume(tmp_path / "x", "raw", SIZE)
    with pytest.raises(DataPlaneError, match="exists already"):
        plane.create_volume(tmp_path / "x", "raw", SIZE)
    with pytest.raises(DataPlaneError, match="must be format cow"):
        plane.create_volume(tmp_path / "y", "raw", SIZE, backing=tmp_path / "x")


def test_layers_in_other_image_folders_keep_working_after_a_merge(plane, tmp_path):
    images = tmp_path / "storage" / "sd" / "images"
    base, middle, top = images / "d1" / "v1", images / "d1" / "v2", images / "d2" / "v3"
    for folder in (images / "d1", images / "d2"):
        folder.mkdir(parents=True)
    plane.seed_volume(base, "cow", SIZE, seed=3, allocated_fraction=0.5)
    plane.create_volume(middle, "cow", SIZE, backing=base)
    plane.guest_write(middle, "cow", MiB, MiB, seed=1)
    plane.create_volume(top, "cow", SIZE, backing=middle)
    guest_before = guest_bytes(top, tmp_path)

    plane.commit_volume(middle, base)
    plane.rebase_volume(top, base)
    plane.delete_volume(middle)

    assert plane.volume_info(top)["backing"] == str(base)
    assert guest_bytes(top, tmp_path) == guest_before


def test_concurrent_calls_on_one_volume_wait_for_each_other(plane, tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    volume = tmp_path / "disk"
    plane.create_volume(volume, "cow", SIZE)
    with ThreadPoolExecutor(4) as pool:
        jobs = [pool.submit(plane.guest_write, volume, "cow", n * MiB, MiB, n) for n in range(6)]
        jobs += [pool.submit(plane.add_bitmap, volume, f"c{n}") for n in range(3)]
        for job in jobs:
            job.result()
    assert len(plane.list_bitmaps(volume)) == 3
