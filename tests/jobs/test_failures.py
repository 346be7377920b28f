"""What goes wrong: the snapshot flow's cleanup, an engine fault mid-transfer, cancel, a dead driver."""

import os
import re
import signal
import time

import pytest
from django.core.management import call_command

from jobs import services
from jobs.choices import ReconcileKind, SessionState
from jobs.models import ReconcileAction, RestorePoint, TaskSession, VmLock
from tests.jobs.conftest import (
    MIB,
    engine_leftovers,
    export_disk,
    guest_image,
    images_equal,
    session_log,
    wait_for_session,
)

pytestmark = pytest.mark.integration


def _wait_for_running_disk(session, timeout=60.0):
    """Wait until a worker is moving a disk of the session (bytes flowing)."""
    from workers.models import DiskTask

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if DiskTask.objects.filter(session_id=session.pk, state="running", bytes_done__gt=0).exists():
            return
        session.refresh_from_db()
        assert not session.is_terminal, session_log(session)
        time.sleep(0.1)
    raise AssertionError(f"no disk of session {session.pk} started moving\n{session_log(session)}")


def _wait_until_clean(stack, timeout=60.0):
    deadline = time.monotonic() + timeout
    while (left := engine_leftovers(stack)) and time.monotonic() < deadline:
        time.sleep(0.5)
    return left


def test_the_snapshot_flow_backs_up_and_deletes_its_snapshot(runners, tmp_path):
    stack = runners(control={"VBR_BACKUP_METHOD": "snapshot"})
    session = services.backup_vms([stack.vm("small-vm2")], stack.repository)
    session = wait_for_session(session, stack=stack)
    assert session.state == SessionState.SUCCESS, session_log(session) + stack.logs()
    assert "using the snapshot flow" in session_log(session)
    point = RestorePoint.objects.get(session=session)
    assert point.type == "full" and not point.checkpoint_id and point.job is None
    for disk in point.disks:
        exported = export_disk(stack.repository, point.manifest_id, disk["id"], tmp_path / f"{disk['id']}.raw")
        assert images_equal(exported, guest_image(stack.sim, disk["id"], tmp_path / f"{disk['id']}.sim"))
    assert engine_leftovers(stack) == []


def _wait_for_bytes_sent(session, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if TaskSession.objects.filter(session=session, state="running", bytes_sent__gt=0).exists():
            return
        time.sleep(0.1)
    raise AssertionError(f"no bytes sent seen while session {session.pk} ran\n{session_log(session)}")


def test_an_imageio_fault_mid_transfer_fails_the_vm_and_leaves_the_engine_clean(runners):
    stack = runners(worker={"VBR_WORKER_RETRIES": "1"})  # gives up after one retry, 0.5 s later
    stack.sim.cli("fault", "add", "imageio-drop", "--bytes", "1M")
    try:
        session = wait_for_session(services.backup_vms([stack.vm("small-vm1")], stack.repository), stack=stack)
    finally:
        stack.sim.cli("fault", "clear")
    assert session.state == SessionState.FAILED, session_log(session)
    task = TaskSession.objects.get(session=session)
    assert task.state == SessionState.FAILED and task.error
    assert "failed:" in session_log(session)
    assert not RestorePoint.objects.filter(session=session).exists()
    assert engine_leftovers(stack) == []
    assert not VmLock.objects.exists()


def test_an_engine_fault_at_finalize_fails_the_vm_and_deletes_the_manifest_written_meanwhile(runners):
    # The manifest is written while the engine finalizes; a VM that fails there records nothing.
    stack = runners()
    with stack.repository.client() as client:
        before = {m["id"] for m in client.list_manifests()}
    stack.sim.cli("fault", "add", "fail", "--match", "POST backups/finalize", "--count", "1")
    try:
        session = wait_for_session(services.backup_vms([stack.vm("small-vm1")], stack.repository), stack=stack)
    finally:
        stack.sim.cli("fault", "clear")
    assert session.state == SessionState.FAILED, session_log(session)
    assert "refused finalizing a backup" in session_log(session)
    assert not RestorePoint.objects.filter(session=session).exists()
    with stack.repository.client() as client:
        assert {m["id"] for m in client.list_manifests()} == before
    assert engine_leftovers(stack) == []


def test_cancel_mid_transfer_stops_cleans_up_and_keeps_earlier_restore_points(runners, tmp_path):
    stack = runners(start_worker=False)
    job = stack.job("cancel-me", ["small-vm1"])
    with stack.worker():  # the earlier restore point at full speed
        first = wait_for_session(services.run_job(job), stack=stack)
    assert first.state == SessionState.SUCCESS, session_log(first)
    earlier = RestorePoint.objects.get(session=first)
    stack.sim.cli("guest-write", "--vm", "small-vm1", "--offset", "0", "--length", str(40 * MIB), "--seed", "3")

    with stack.worker(VBR_WORKER_MAX_MBPS="8"):  # slow enough to be cancelled mid-transfer
        second = services.run_job(job, full=True)
        _wait_for_running_disk(second)
        _wait_for_bytes_sent(second)  # figures move while the disk moves, not only at its end
        call_command("cancel_session", str(second.pk))
        second = wait_for_session(second, timeout=60, stack=stack)

    assert second.state == SessionState.CANCELLED, session_log(second)
    assert "cancelled: no restore point" in session_log(second)
    assert re.search(r"Cancelled image transfer \S+ of disk small-vm1_\w+\.", session_log(second))
    assert not RestorePoint.objects.filter(session=second).exists()
    assert engine_leftovers(stack) == []
    assert RestorePoint.objects.filter(pk=earlier.pk).exists()
    disk = earlier.disks[0]
    export_disk(stack.repository, earlier.manifest_id, disk["id"], tmp_path / "earlier.raw")  # still readable


def test_a_driver_killed_mid_backup_is_failed_and_its_leftovers_cleaned_by_reconcile(runners):
    stack = runners(control={"VBR_SESSION_STALE_SECONDS": "3"}, worker={"VBR_WORKER_MAX_MBPS": "4"})
    session = services.backup_vms([stack.vm("small-vm2")], stack.repository)
    _wait_for_running_disk(session)
    os.killpg(stack.control.pid, signal.SIGKILL)
    assert engine_leftovers(stack), "the killed session should hold a transfer in the engine"
    time.sleep(4)  # let its heartbeat go stale

    stack.start_control()  # reconcile runs when the runner starts
    session = wait_for_session(session, timeout=60, stack=stack)
    assert session.state == SessionState.FAILED
    assert "driver died" in session_log(session)
    assert _wait_until_clean(stack) == []
    kinds = set(ReconcileAction.objects.filter(session=session).values_list("kind", flat=True))
    assert ReconcileKind.SESSION_FAILED in kinds
    assert kinds & {ReconcileKind.TRANSFER_CANCELLED, ReconcileKind.BACKUP_FINALIZED}, kinds
    assert not VmLock.objects.exists()
