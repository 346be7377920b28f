"""Checkpoints as qemu dirty bitmaps, backups through imageio, and the point in time."""

import pytest
from ovirt_imageio import client

from simulator.dataplane import DataPlaneError

from .conftest import MiB, guest_bytes, qemu_img_compare

SIZE = 32 * MiB
CLUSTER = 64 * 1024


def backup_transfer(dataplane, transfer_id, volume, bitmap=None):
    return dataplane.open_transfer(transfer_id, volume, "cow", "download", "raw", SIZE, 300, 60,
                                   dirty_bitmap=bitmap)


def dirty_ranges(endpoint, ca_file) -> list[tuple[int, int]]:
    with client.ImageioClient(endpoint.transfer_url, cafile=ca_file) as image:
        return [(e.start, e.start + e.length) for e in image.extents("dirty") if e.dirty]


def covered(ranges, start, end) -> bool:
    return any(a <= start and end <= b for a, b in ranges)


def test_dirty_extents_are_the_clusters_written_since_the_checkpoint(dataplane, tmp_path, ca_file):
    volume = tmp_path / "disk.cow"
    dataplane.seed_volume(volume, "cow", SIZE, seed=1, allocated_fraction=0.5)
    dataplane.guest_write(volume, "cow", 0, MiB, seed=1)  # before the checkpoint: not dirty
    dataplane.add_bitmap(volume, "c1")
    writes = [(5 * MiB + 100, 300_000), (20 * MiB, 64 * 1024), (31 * MiB, MiB)]
    for offset, length in writes:
        dataplane.guest_write(volume, "cow", offset, length, seed=offset)

    endpoint = backup_transfer(dataplane, "backup-1", volume, "c1")
    dirty = dirty_ranges(endpoint, ca_file)
    with client.ImageioClient(endpoint.transfer_url, cafile=ca_file) as image:
        zero = [(e.start, e.length, e.zero) for e in image.extents("zero")]
    dataplane.close_transfer("backup-1")

    for offset, length in writes:
        assert covered(dirty, offset, offset + length)
    dirty_bytes = sum(b - a for a, b in dirty)
    written_clusters = sum(
        (offset + length + CLUSTER - 1) // CLUSTER - offset // CLUSTER for offset, length in writes)
    print(f"written {sum(n for _, n in writes)} bytes, dirty {dirty_bytes} bytes")
    assert dirty_bytes == written_clusters * CLUSTER
    # context=zero is the allocation, as without a bitmap.
    assert any(not z for _, _, z in zero) and any(z for _, _, z in zero)


def test_an_incremental_download_on_the_full_rebuilds_the_disk(dataplane, tmp_path, ca_file):
    volume = tmp_path / "disk.cow"
    dataplane.seed_volume(volume, "cow", SIZE, seed=2, allocated_fraction=0.6)
    dataplane.add_bitmap(volume, "c1")
    full = tmp_path / "full.qcow2"
    client.download(backup_transfer(dataplane, "full", volume).transfer_url, str(full), ca_file)
    dataplane.close_transfer("full")

    dataplane.guest_write(volume, "cow", 7 * MiB, 3 * MiB, seed=3)
    dataplane.add_bitmap(volume, "c2")
    incremental = tmp_path / "incremental.qcow2"
    endpoint = backup_transfer(dataplane, "incr", volume, "c1")
    client.download(endpoint.transfer_url, str(incremental), ca_file, incremental=True,
                    backing_file=str(full), backing_format="qcow2")
    dataplane.close_transfer("incr")

    assert qemu_img_compare(volume, incremental).returncode == 0
    # Only the changed clusters travelled.
    assert incremental.stat().st_size < 5 * MiB


def test_a_backup_reads_the_disk_as_it_was_when_it_began(dataplane, tmp_path, ca_file):
    volume = tmp_path / "disk.cow"
    dataplane.seed_volume(volume, "cow", SIZE, seed=4, allocated_fraction=0.5)
    dataplane.add_bitmap(volume, "c1")
    dataplane.guest_write(volume, "cow", 2 * MiB, MiB, seed=5)
    at_start = guest_bytes(volume, tmp_path)

    dataplane.add_bitmap(volume, "c2")  # the backup's new checkpoint
    dataplane.begin_backup([volume])
    endpoint = backup_transfer(dataplane, "pit", volume, "c1")
    # The guest goes on writing while the backup reads: inside and outside the dirty area.
    dataplane.guest_write(volume, "cow", 2 * MiB, 4096, seed=6)
    dataplane.guest_write(volume, "cow", 10 * MiB, MiB, seed=7)
    target = tmp_path / "backup.raw"
    client.download(endpoint.transfer_url, str(target), ca_file, fmt="raw")
    assert dataplane.in_backup(volume)
    guest_now = guest_bytes(dataplane.guest_view(volume)[0], tmp_path)
    dataplane.close_transfer("pit")
    dataplane.end_backup([volume])

    assert target.read_bytes() == at_start
    assert guest_now != at_start
    assert guest_bytes(volume, tmp_path) == guest_now
    assert not dataplane.in_backup(volume)
    # What the guest wrote during the backup is dirty for the next incremental.
    endpoint = backup_transfer(dataplane, "next", volume, "c2")
    dirty = dirty_ranges(endpoint, ca_file)
    dataplane.close_transfer("next")
    assert dirty == [(2 * MiB, 2 * MiB + CLUSTER), (10 * MiB, 11 * MiB)]


def test_a_raw_volume_is_frozen_for_a_backup_too(dataplane, tmp_path, ca_file):
    volume = tmp_path / "disk.raw"
    dataplane.seed_volume(volume, "raw", SIZE, seed=4, allocated_fraction=0.5)
    at_start = guest_bytes(volume, tmp_path)
    dataplane.begin_backup([volume])
    endpoint = dataplane.open_transfer("raw-full", volume, "raw", "download", "raw", SIZE, 300, 60)
    dataplane.guest_write(volume, "raw", 0, MiB, seed=1)
    target = tmp_path / "backup.raw"
    client.download(endpoint.transfer_url, str(target), ca_file, fmt="raw")
    dataplane.close_transfer("raw-full")
    dataplane.end_backup([volume])

    assert target.read_bytes() == at_start
    assert guest_bytes(volume, tmp_path) != at_start
    assert dataplane.volume_info(volume)["format"] == "raw"


def test_raw_volumes_have_no_bitmaps(dataplane, tmp_path):
    volume = tmp_path / "disk.raw"
    dataplane.create_volume(volume, "raw", SIZE)
    assert dataplane.list_bitmaps(volume) == []
    with pytest.raises(DataPlaneError, match="raw volumes have no bitmaps"):
        dataplane.add_bitmap(volume, "c1")
    with pytest.raises(DataPlaneError, match="raw volumes have no bitmaps"):
        dataplane.open_transfer("x", volume, "raw", "download", "raw", SIZE, 60, 60,
                                dirty_bitmap="c1")


def test_an_inconsistent_checkpoint_cannot_be_exported(dataplane, tmp_path):
    volume = tmp_path / "disk.cow"
    dataplane.create_volume(volume, "cow", SIZE)
    dataplane.add_bitmap(volume, "c1")
    dataplane.add_bitmap(volume, "c2")

    dataplane.invalidate_bitmap(volume, "c1")

    assert {b["name"]: b["consistent"] for b in dataplane.list_bitmaps(volume)} == {
        "c1": False, "c2": True}
    with pytest.raises(DataPlaneError, match="inconsistent"):
        backup_transfer(dataplane, "b1", volume, "c1")
    # A new full with a new checkpoint works; the broken bitmap can be removed.
    backup_transfer(dataplane, "b2", volume, "c2")
    dataplane.close_transfer("b2")
    dataplane.remove_bitmap(volume, "c1")
    assert [b["name"] for b in dataplane.list_bitmaps(volume)] == ["c2"]


def test_a_removed_checkpoint_does_not_exist(dataplane, tmp_path):
    volume = tmp_path / "disk.cow"
    dataplane.create_volume(volume, "cow", SIZE)
    dataplane.add_bitmap(volume, "c1")
    dataplane.invalidate_bitmap(volume, "c1", how="removed")
    with pytest.raises(DataPlaneError, match="Bitmap does not exist"):
        backup_transfer(dataplane, "b1", volume, "c1")


def test_checkpoints_span_a_snapshot_layer(dataplane, tmp_path, ca_file):
    base, top = tmp_path / "base.cow", tmp_path / "top.cow"
    dataplane.seed_volume(base, "cow", SIZE, seed=5, allocated_fraction=0.3)
    dataplane.add_bitmap(base, "c1")
    dataplane.guest_write(base, "cow", 1 * MiB, MiB, seed=1)
    dataplane.create_volume(top, "cow", SIZE, backing=base)  # a snapshot
    dataplane.guest_write(top, "cow", 8 * MiB, MiB, seed=2)

    endpoint = backup_transfer(dataplane, "chain", top, "c1")
    dirty = dirty_ranges(endpoint, ca_file)
    dataplane.close_transfer("chain")

    assert dirty == [(1 * MiB, 2 * MiB), (8 * MiB, 9 * MiB)]
    # The merged temporary bitmap is gone with the transfer.
    assert [b["name"] for b in dataplane.list_bitmaps(top)] == ["c1"]

    # Removing the snapshot keeps the checkpoint's record of both writes.
    dataplane.commit_volume(top, base)
    endpoint = backup_transfer(dataplane, "merged", base, "c1")
    assert dirty_ranges(endpoint, ca_file) == [(1 * MiB, 2 * MiB), (8 * MiB, 9 * MiB)]
    dataplane.close_transfer("merged")
