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
    assert _engine_checkpoints(stack, "small-vm1") == [by_vm["small-vm1"].checkpoint_id], \
        "checkpoints no repository needs any more are deleted"
    # Each disk said when it had read its blocks (its transfer could be finalized then): an
    # incremental of a disk that changed, and every full.
    from workers.models import DiskTask

    moved = DiskTask.objects.filter(session_id__in=[first.pk, second.pk]).exclude(result__figures__bytes_read=0)
    assert moved.count() >= 6 and all(t.started < t.reads_finished <= t.finished for t in moved)


def _engine_checkpoints(stack, vm_name):
    from plugin import engine as ovirt

    with ovirt.connect(stack.manager.credentials()) as engine:
        return [c.id for c in ovirt.list_checkpoints(engine, stack.vm(vm_name).engine_id)]


def test_a_broken_checkpoint_gives_a_full_with_the_reason_in_the_log(stack, tmp_path):
    job = stack.job("checkpoints", ["small-vm1"])
    first = wait_for_session(services.run_job(job), stack=stack)
    assert first.state == SessionState.SUCCESS, session_log(first) + stack.logs()
    checkpoint = RestorePoint.objects.get(session=first).checkpoint_id
    assert checkpoint

    # The bitmap is gone but the engine still lists the checkpoint: the incremental fails, a full follows.
    stack.sim.cli("fault", "checkpoint", "--vm", "small-vm1", "--checkpoint", checkpoint,
                  "--action", "remove-bitmap")
    second = wait_for_session(services.run_job(job), stack=stack)
    assert second.state == SessionState.SUCCESS, session_log(second)
    point = RestorePoint.objects.get(session=second)
    assert point.type == BackupType.FULL
    assert "full backup instead: the engine could not start an incremental backup" in session_log(second)
    disk = point.disks[0]
    exported = export_disk(stack.repository, point.manifest_id, disk["id"], tmp_path / "second.raw")
    assert images_equal(exported, guest_image(stack.sim, disk["id"], tmp_path / "second.sim"))

    stack.sim.cli("fault", "checkpoint", "--vm", "small-vm1", "--checkpoint", point.checkpoint_id,
                  "--action", "invalidate")
    third = wait_for_session(services.run_job(job), stack=stack)
    assert third.state == SessionState.SUCCESS, session_log(third)
    assert RestorePoint.objects.get(session=third).type == BackupType.FULL
    assert f"full backup: checkpoint {point.checkpoint_id} of the last restore point is invalid" \
        in session_log(third)


def test_a_scheduled_run_fires_and_its_session_says_so(stack):
    from django.utils import timezone
    from django_q.models import Schedule
    from django_q.scheduler import scheduler

    from jobs.choices import ScheduleKind, Trigger
    from jobs.models import Session

    job = stack.job("every-minute", ["small-vm2"], schedule_kind=ScheduleKind.CRON, schedule_cron="* * * * *")
    due = timezone.now() - timezone.timedelta(seconds=1)
    Schedule.objects.filter(name=f"jobs: backup job {job.pk}").update(next_run=due)
    scheduler()  # what the control runner's guard calls every 30 s: the schedule becomes a task
    deadline = timezone.now() + timezone.timedelta(seconds=60)
    while not Session.objects.filter(job=job).exists() and timezone.now() < deadline:
        import time

        time.sleep(0.2)
    session = wait_for_session(Session.objects.get(job=job), stack=stack)
    assert session.trigger == Trigger.SCHEDULE and session.state == SessionState.SUCCESS, session_log(session)
    assert "Started by the schedule (cron * * * * *)" in session_log(session)
    assert Schedule.objects.get(name=f"jobs: backup job {job.pk}").next_run > due  # the next one is planned


def test_a_disk_index_too_large_for_the_task_row_comes_back_through_the_repository(runners, tmp_path):
    from workers.models import DiskTask

    stack = runners(worker={"VBR_INDEX_INLINE_BYTES": "100"})  # every index goes as chunks
    job = stack.job("stashed", ["small-vm2"])
    images_at = {}
    first = wait_for_session(services.run_job(job), stack=stack)
    assert first.state == SessionState.SUCCESS, session_log(first) + stack.logs()
    points = list(RestorePoint.objects.filter(session=first))
    _snapshot_disks(stack, points, tmp_path, images_at)
    stack.sim.cli("guest-write", "--vm", "small-vm2", "--offset", "5M", "--length", "1M", "--seed", "3")
    second = wait_for_session(services.run_job(job), stack=stack)
    assert second.state == SessionState.SUCCESS, session_log(second) + stack.logs()
    incrementals = list(RestorePoint.objects.filter(session=second))
    assert [p.type for p in incrementals] == [BackupType.INCREMENTAL]
    _snapshot_disks(stack, incrementals, tmp_path, images_at)
    results = [t.result for t in DiskTask.objects.filter(session_id__in=[first.pk, second.pk])]
    assert results and all(r["index_chunks"] and not r["index"]["blocks"] for r in results)
    _points_equal_disks(stack, points + incrementals, images_at, tmp_path)
