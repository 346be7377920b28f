"""A VM restored in place (the engine re-created it with a new id) stays the job's, and stays protected."""

from datetime import timedelta

import pytest
from django.utils import timezone

from inventory.models import VM
from jobs.choices import SessionState
from jobs.models import ReplacedVm, Session
from tests.jobs import factories

pytestmark = pytest.mark.django_db


def backup_session(job):
    return Session.objects.create(job=job, name=job.name, state=SessionState.RUNNING)


def test_a_job_that_chose_a_vm_backs_up_the_vm_an_in_place_restore_re_created():
    from jobs.driver.backup_session import _follow_chosen_vms

    _, _, (web1, db1) = factories.inventory()
    job = factories.job(vms=[web1, db1])
    recreated = factories.restored_in_place(web1)

    assert {vm.pk for vm in job.resolve_vms()} == {recreated.pk, db1.pk}
    assert job.vm_count() == 2 and job.chosen_vms_gone() == []
    session = backup_session(job)
    assert _follow_chosen_vms(session) == []
    assert set(job.vms.all()) == {recreated, db1}  # the job's pages and wizard show it chosen
    assert "was re-created by an in-place restore with a new engine id (vm-9, was vm-0)" in \
        session.log_lines.get().message


def test_a_re_created_vm_the_inventory_has_not_synced_yet_is_followed_once_it_has():
    from jobs.driver.backup_session import _follow_chosen_vms

    _, _, (web1,) = factories.inventory(vm_names=("web1",))
    job = factories.job(vms=[web1])
    factories.restored_in_place(web1, synced=False)  # the restore records the link before the sync runs

    early = backup_session(job)
    assert _follow_chosen_vms(early) == [web1]
    assert "new engine id (vm-9) that the inventory doesn't have yet: sync manager engine1" in \
        early.log_lines.get().message

    recreated = VM.objects.create(manager=web1.manager, engine_id="vm-9", name="web1")  # the sync
    assert _follow_chosen_vms(backup_session(job)) == []
    assert list(job.vms.all()) == [recreated]


def test_the_first_backup_of_a_re_created_vm_is_a_full_that_says_why():
    from jobs.driver.plan import plan_backup

    _, _, (web1,) = factories.inventory(vm_names=("web1",))
    repo = factories.repository()
    factories.restore_point(web1, repo, timezone.now() - timedelta(days=1), checkpoint_id="cp-1")
    recreated = factories.restored_in_place(web1)

    plan = plan_backup(None, recreated, repo, [])  # no base: the engine isn't asked

    restore = ReplacedVm.objects.get().session
    assert not plan.incremental
    assert plan.reason.startswith(f"an in-place restore (session {restore.pk}) re-created the VM with "
                                  "a new engine id (vm-9, was vm-0)")


def test_a_re_created_vm_is_protected_by_the_restore_points_taken_before():
    from jobs.protection import protection_for_vms

    _, _, (web1, db1) = factories.inventory()
    repo = factories.repository()
    job = factories.job(vms=[web1], repository=repo)
    point = factories.restore_point(web1, repo, timezone.now(), job=job)
    backup = backup_session(job)
    backup.tasks.create(vm=web1, vm_name="web1", state=SessionState.WARNING, finished=timezone.now())
    recreated = factories.restored_in_place(web1)

    shown = protection_for_vms([recreated, db1])

    assert list(shown) == [recreated.pk]
    assert shown[recreated.pk]["last_restore_point"] == point.pk
    assert shown[recreated.pk]["state"] == SessionState.WARNING  # how its last backup went
