"""Backups end to end: simulator, real runners, real imageio, real data mover."""

import pytest

from jobs import services
from jobs.choices import BackupType, SessionState
from jobs.models import RestorePoint
from repositories.store import BLOCK_SIZE
from tests.jobs.conftest import (
    MIB,
    export_disk,
    guest_image,
    images_equal,
    session_log,
    wait_for_session,
)

pytestmark = pytest.mark.integration


def _points_equal_disks(stack, points, images_at, tmp_path):
    for point in points:
        for disk in point.disks:
            exported = export_disk(stack.repository, point.manifest_id, disk["id"],
                                   tmp_path / f"rp{point.pk}-{disk['id']}.raw")
            assert images_equal(exported, images_at[(point.pk, disk["id"])]), \
                f"restore point {point} disk {disk['name']} differs from the disk at backup time"


def _snapshot_disks(stack, points, tmp_path, images_at):
    for point in points:
        for disk in point.disks:
            images_at[(point.pk, disk["id"])] = guest_image(
                stack.sim, disk["id"], tmp_path / f"disk{point.pk}-{disk['id']}.raw")


def test_full_then_incremental_reads_only_dirty_blocks_and_every_restore_point_equals_its_disk(
        stack, tmp_path):
    job = stack.job("two-vms", ["small-vm1", "small-vm2"], parallel_vms=2)
    images_at = {}

    first = wait_for_session(services.run_job(job), stack=stack)
    assert first.state == SessionState.SUCCESS, session_log(first) + stack.logs()
    fulls = list(RestorePoint.objects.filter(session=first))
    assert {p.vm_name for p in fulls} == {"small-vm1", "small-vm2"}
    assert all(p.type == BackupType.FULL for p in fulls)
    assert "no earlier restore point" in session_log(first)
    assert first.bytes_read > 0 and first.bytes_stored > 0
    _snapshot_disks(stack, fulls, tmp_path, images_at)

    written = {"small-vm1": [(0, MIB), (10 * MIB, 2 * MIB)], "small-vm2": [(5 * MIB, MIB)]}
    for vm, ranges in written.items():
        for seed, (offset, length) in enumerate(ranges, start=7):
            stack.sim.cli("guest-write", "--vm", vm, "--offset", str(offset), "--length", str(length),
                          "--seed", str(seed))

    second = wait_for_session(services.run_job(job), stack=stack)
    assert second.state == SessionState.SUCCESS, session_log(second) + stack.logs()
    incrementals = list(RestorePoint.objects.filter(session=second))
    _snapshot_disks(stack, incrementals, tmp_path, images_at)
    by_vm = {p.vm_name: p for p in incrementals}
    for vm, ranges in written.items():
        point = by_vm[vm]
        assert point.type == BackupType.INCREMENTAL, session_log(second)
        blocks = {b for offset, length in ranges
                  for b in range(offset // BLOCK_SIZE, (offset + length - 1) // BLOCK_SIZE + 1)}
        qcow_disks = [d for d in point.disks if d["mode"] == BackupType.INCREMENTAL]
        raw_disks = [d for d in point.disks if d["mode"] == BackupType.FULL]
        assert sum(d["bytes_read"] for d in qcow_disks) <= len(blocks) * BLOCK_SIZE
        assert all(d["format"] == "raw" for d in raw_disks)
    _points_equal_disks(stack, fulls + incrementals, images_at, tmp_path)
