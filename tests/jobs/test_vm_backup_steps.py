"""Steps of one VM's backup where the engine's answers decide: starting it, pruning checkpoints.

Unit tests that patch the one seam (plugin.engine, with autospec): an engine that
takes a request and then stops answering can't be staged with the simulator.
"""

from types import SimpleNamespace
from unittest import mock

import pytest

from jobs.driver.cleanup import EngineHoldings
from jobs.driver.context import SessionRun
from jobs.driver.plan import BackupPlan
from jobs.driver.vm_backup import VmBackup
from jobs.models import Session, TaskSession
from plugin.engine import BackupInfo, DiskInfo
from plugin.errors import EngineError, EngineTimeout
from tests.jobs import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def backup():
    _, _, (vm,) = factories.inventory(vm_names=("web1",))
    session = Session.objects.create(name="nightly", state="running")
    task = TaskSession.objects.create(session=session, vm=vm, vm_name=vm.name)
    return VmBackup(SessionRun(session), vm, factories.repository(), task)


INCREMENTAL = BackupPlan(base=SimpleNamespace(manifest_id="rp-1"), from_checkpoint_id="cp-1")
DISKS = [DiskInfo(id="d-1", name="web1_os")]


def test_an_engine_that_stops_answering_fails_the_vm_without_a_full_and_keeps_what_it_started(backup):
    holdings = EngineHoldings(vm_id=backup.vm.engine_id)
    started = BackupInfo(id="b-1", vm_id=backup.vm.engine_id, phase="initializing", description=backup._tag())
    with mock.patch.multiple("jobs.driver.vm_backup.ovirt", autospec=True, start_backup=mock.DEFAULT,
                             list_backups=mock.DEFAULT) as engine:
        engine["start_backup"].side_effect = EngineTimeout("The engine did not answer in time")
        engine["list_backups"].return_value = [started]
        with pytest.raises(EngineTimeout):
            backup._start_backup(object(), holdings, DISKS, INCREMENTAL)
        assert engine["start_backup"].call_count == 1  # no second try as a full
    assert holdings.backup_id == "b-1"  # finalized by the VM's cleanup, not left to reconcile
    assert "full backup instead" not in "\n".join(line.message for line in backup.run.session.log_lines.all())


def test_an_incremental_the_engine_refuses_becomes_a_full_with_the_reason(backup):
    holdings = EngineHoldings(vm_id=backup.vm.engine_id)
    ready = BackupInfo(id="b-2", vm_id=backup.vm.engine_id, phase="ready")
    with mock.patch.multiple("jobs.driver.vm_backup.ovirt", autospec=True, start_backup=mock.DEFAULT,
                             wait_backup_phase=mock.DEFAULT) as engine:
        engine["start_backup"].side_effect = [EngineError("The engine refused starting a backup"),
                                              BackupInfo(id="b-2", vm_id=backup.vm.engine_id)]
        engine["wait_backup_phase"].return_value = ready
        _, plan = backup._start_backup(object(), holdings, DISKS, INCREMENTAL)
    assert not plan.incremental and "could not start an incremental" in plan.reason
    assert holdings.backup_id == "b-2"


def test_pruning_keeps_the_checkpoint_of_the_newest_usable_restore_point(backup):
    from datetime import timedelta

    from django.utils import timezone

    from plugin.engine import CheckpointInfo

    now, repo = timezone.now(), backup.repository
    factories.restore_point(backup.vm, repo, now - timedelta(days=2), checkpoint_id="cp-1")
    factories.restore_point(backup.vm, repo, now - timedelta(days=1), checkpoint_id="cp-2")
    factories.restore_point(backup.vm, repo, now, checkpoint_id="cp-3", state="corrupted")
    chain = [CheckpointInfo(id=f"cp-{n}") for n in (1, 2, 3)]
    with mock.patch.multiple("jobs.driver.vm_backup.ovirt", autospec=True, list_checkpoints=mock.DEFAULT,
                             delete_checkpoint=mock.DEFAULT) as engine:
        engine["list_checkpoints"].return_value = chain
        backup._prune_checkpoints(object())
    # cp-3's point was found corrupted: the next incremental starts from cp-2.
    assert [c.args[2] for c in engine["delete_checkpoint"].call_args_list] == ["cp-1"]


def test_a_disk_the_engine_reads_in_full_is_named_in_the_log_with_its_reason(backup):
    from jobs.choices import BackupType
    from jobs.driver.disks import DiskWork

    disks = [DiskInfo(id="d-1", name="web1_os"), DiskInfo(id="d-2", name="web1_data")]
    works = [backup._work(disks[0], BackupType.INCREMENTAL, INCREMENTAL),
             backup._work(disks[1], BackupType.FULL, INCREMENTAL)]  # the engine's backup_mode said full
    assert all(isinstance(w, DiskWork) for w in works)
    backup._log_engine_fulls(works, INCREMENTAL)
    log = [line.message for line in backup.run.session.log_lines.all()]
    assert log == ["web1: disk web1_data is read in full: the engine chose a full backup."]
    backup.task.refresh_from_db()
    assert backup.task.reason == "the engine chose a full backup"


def test_a_disk_task_whose_commit_fails_is_not_kept_on_the_disk_and_the_real_error_shows(backup):
    from contextlib import contextmanager

    from django.db import DatabaseError, transaction

    from jobs.driver.disks import DiskWork, submit
    from workers import dispatch

    @contextmanager
    def failing_commit(cluster, manager, **kwargs):
        # The task is made inside the block; the commit that ends the block fails.
        with transaction.atomic():
            yield None
            transaction.set_rollback(True)
        raise DatabaseError("could not serialize access")

    work = DiskWork(disk=DISKS[0], mode="full", transfer_url="https://host1:54322/images/t")
    with mock.patch.object(dispatch, "worker_for", failing_commit), \
            pytest.raises(DatabaseError, match="could not serialize"):
        submit(backup.run, backup.vm, backup.repository, work, None)
    # Nothing for the way out to cancel: a rolled-back task would raise DoesNotExist over the error.
    assert work.task is None


def test_no_restore_point_is_recorded_for_a_session_reconcile_ended_meanwhile(backup):
    # Reconcile deletes what a session it failed left unrecorded: a driver that was only
    # stalled must not record a restore point whose manifest may be gone.
    from jobs.choices import SessionState
    from jobs.driver.restore_points import SessionEnded, record_restore_point
    from jobs.models import RestorePoint
    from repositories.store import BLOCK_SIZE, DiskIndex, build_manifest

    manifest = build_manifest("rp-late", backup.vm.engine_id, [DiskIndex(id="d-1", size=BLOCK_SIZE, blocks=[None])])
    Session.objects.filter(pk=backup.run.session.pk).update(state=SessionState.FAILED)
    with pytest.raises(SessionEnded, match="ended meanwhile"):
        record_restore_point(manifest, session=backup.run.session, vm=backup.vm, repository=backup.repository,
                             works=[], checkpoint_id=None, base=None, incremental=False)
    assert not RestorePoint.objects.exists()
