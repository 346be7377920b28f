"""Reconcile's last look before it cleans an engine object up (database only)."""

from datetime import timedelta
from unittest import mock

import pytest
from django.utils import timezone

from jobs.choices import ReconcileKind, SessionState
from jobs.models import ReconcileAction, Session
from jobs.reconcile import _act, fail_dead_sessions
from tests.jobs import factories
from workers import dispatch
from workers.choices import DiskTaskKind, DiskTaskState, WorkerState
from workers.models import DiskTask, Worker

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(("state", "acted"), [(SessionState.RUNNING, False), (SessionState.PENDING, False),
                                               (SessionState.FAILED, True)])
def test_an_object_is_cleaned_only_when_its_session_is_over_at_that_moment(state, acted):
    # A session that started after the pass read the live sessions owns what it just made.
    session = Session.objects.create(name="nightly", state=state)
    action = mock.Mock()
    _act(None, str(session.pk), "transfer-1", ReconcileKind.TRANSFER_CANCELLED, "cancelled transfer-1", action)
    assert action.called is acted
    assert ReconcileAction.objects.filter(object_id="transfer-1").exists() is acted


def test_the_queued_disks_of_a_dead_session_end_at_once_and_free_their_worker():
    manager, cluster, _ = factories.inventory()
    worker = Worker.objects.create(name="w1", manager=manager, cluster=cluster, max_tasks=2,
                                   state=WorkerState.READY, last_heartbeat=timezone.now())
    dead = Session.objects.create(name="dead", state=SessionState.RUNNING,
                                  heartbeat=timezone.now() - timedelta(minutes=5))
    queued, running = (DiskTask.objects.create(
        kind=DiskTaskKind.BACKUP, session_id=dead.pk, worker=worker, queue=worker.queue, manager=manager,
        repository=factories.repository(f"r{n}"), disk_engine_id="disk-0",
        transfer_url="https://host1:54322/images/t") for n in range(2))
    DiskTask.objects.filter(pk=running.pk).update(state=DiskTaskState.RUNNING)
    assert fail_dead_sessions(stale_seconds=60) == [dead.pk]
    queued.refresh_from_db(), running.refresh_from_db()
    # No runner takes a disk flagged to stop: waiting for one to end it could last for good.
    assert queued.state == DiskTaskState.CANCELLED and queued.finished
    assert running.state == DiskTaskState.RUNNING and running.cancel_requested  # its run reads the flag
    assert dispatch.choose_worker(cluster, manager) == worker


def test_a_driver_that_was_only_stalled_stops_once_reconcile_failed_its_session():
    from jobs.driver.context import SessionRun
    from jobs.driver.heartbeat import Heartbeat

    stalled = Session.objects.create(name="stalled", state=SessionState.RUNNING,
                                     heartbeat=timezone.now() - timedelta(minutes=5))
    run = SessionRun(Session.objects.get(pk=stalled.pk))
    assert fail_dead_sessions(stale_seconds=60) == [stalled.pk]
    Heartbeat(run).beat()  # the driver's next beat, once it goes on
    assert run.should_stop()
    assert Session.objects.get(pk=stalled.pk).state == SessionState.FAILED


def test_reconcile_deletes_the_manifests_a_dead_driver_wrote_but_never_recorded(repository):
    # The driver writes a VM's manifest while the engine finalizes; dying before recording the
    # restore point left a manifest no row knows. One it recorded stays.
    from jobs.models import RestorePoint
    from jobs.reconcile import reconcile_all
    from repositories.store import BLOCK_SIZE, DiskIndex, build_manifest

    _, _, (vm,) = factories.inventory(vm_names=("web1",))
    dead = Session.objects.create(name="dead", state=SessionState.RUNNING, options={"repository_id": repository.pk},
                                  heartbeat=timezone.now() - timedelta(hours=1))

    def written(manifest_id: str, session: Session):
        disk = DiskIndex(id="disk-1", size=BLOCK_SIZE, blocks=[None])
        manifest = build_manifest(manifest_id, vm.engine_id, [disk], labels={"session": str(session.pk)})
        with repository.client() as client:
            client.put_manifest(manifest)
        return manifest

    recorded = written(f"rp-recorded-s{dead.pk}", dead)
    RestorePoint.objects.create(vm=vm, vm_engine_id=vm.engine_id, vm_name=vm.name, repository=repository,
                                session=dead, time=recorded.created, manifest_id=recorded.id)
    written(f"rp-unrecorded-s{dead.pk}", dead)
    other = written("rp-other-session", Session.objects.create(name="alive", state=SessionState.RUNNING,
                                                               heartbeat=timezone.now()))

    reconcile_all()

    with repository.client() as client:
        left = {m["id"] for m in client.list_manifests()}
    assert {recorded.id, other.id} <= left and f"rp-unrecorded-s{dead.pk}" not in left
    action = ReconcileAction.objects.get(kind=ReconcileKind.MANIFEST_DELETED)
    assert action.object_id == f"rp-unrecorded-s{dead.pk}" and action.session == dead
