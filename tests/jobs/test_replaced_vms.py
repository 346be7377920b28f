"""A VM restored in place (the engine re-created it with a new id) stays the job's, and stays protected."""

from datetime import timedelta

import pytest
from django.utils import timezone

from inventory.models import VM
from jobs.choices import SessionKind, SessionState, VmSelection
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


def test_a_link_belongs_to_the_manager_of_the_restore_not_to_another_engine_with_the_same_ids():
    from jobs.models import RestorePoint
    from jobs.models.replaced_vms import current_vm_engine_id, current_vm_row
    from jobs.protection import protection_for_vms

    _, _, (web1,) = factories.inventory(vm_names=("web1",))
    # oVirt DR: the second engine imported the replicated storage domain, and web1 with it, same id.
    _, _, (replica,) = factories.inventory(vm_names=("web1",), manager="engine2")
    repo = factories.repository()
    before = factories.restore_point(web1, repo, timezone.now() - timedelta(days=1))
    of_replica = factories.restore_point(replica, repo, timezone.now() - timedelta(hours=1))
    recreated = factories.restored_in_place(web1, "vm-0b")  # on engine1 only

    # restore_vm <point> --replace on engine2 replaces the replica, which is still there as itself.
    assert current_vm_engine_id("vm-0", replica.manager_id) == "vm-0"
    assert current_vm_row(replica.manager_id, "vm-0") == replica
    assert current_vm_row(web1.manager_id, "vm-0") == recreated
    assert list(RestorePoint.objects.of_vm("vm-0", replica.manager_id)) == [of_replica]
    assert list(RestorePoint.objects.of_vm("vm-0", web1.manager_id)) == [before]
    assert dict(RestorePoint.objects.with_vm_key().values_list("pk", "vm_key")) == {
        before.pk: "vm-0b", of_replica.pk: "vm-0"}
    assert protection_for_vms([recreated])[recreated.pk]["last_restore_point"] == before.pk
    # Deleted on engine2 later: gone there, not a VM engine2's inventory is still to sync.
    VM.objects.filter(pk=replica.pk).update(removed=True)
    job = factories.job(vms=[replica])
    session = backup_session(job)
    assert job.resolve_vms() == [] and _follow(session) == [replica]
    assert "is gone from the engine (deleted" in session.log_lines.get().message


def _follow(session):
    from jobs.driver.backup_session import _follow_chosen_vms

    return _follow_chosen_vms(session)


def test_the_restore_holds_the_vm_of_its_own_manager():
    from jobs.restore.driver import _vm_to_replace
    from jobs.restore.run import RestoreRun

    _, _, (web1,) = factories.inventory(vm_names=("web1",))
    _, _, (replica,) = factories.inventory(vm_names=("web1",), manager="engine2")
    point = factories.restore_point(web1, factories.repository(), timezone.now())
    recreated = factories.restored_in_place(web1, "vm-0b")
    restore = Session.objects.create(name="restore", kind="restore", state=SessionState.RUNNING)

    assert _vm_to_replace(RestoreRun(restore, None, point, web1.manager)) == recreated
    assert _vm_to_replace(RestoreRun(restore, None, point, replica.manager)) == replica


def test_nothing_follows_a_vm_an_in_place_restore_is_still_finishing():
    from jobs.protection import protection_for_vms

    _, _, (web1,) = factories.inventory(vm_names=("web1",))
    repo = factories.repository()
    factories.restore_point(web1, repo, timezone.now())
    job = factories.job(vms=[web1], repository=repo)
    # Restored in place before (vm-0 -> vm-5), and now again (vm-5 -> vm-9): the restore is still
    # renaming vm-9, adding its NICs and starting it, and an inventory sync brought it in meanwhile.
    vm5 = factories.restored_in_place(web1, "vm-5")
    recreated = factories.restored_in_place(vm5, "vm-9", state=SessionState.RUNNING)

    session = backup_session(job)
    assert job.resolve_vms() == [] and _follow(session) == [web1]
    assert "is being restored in place (as vm-9): the job backs the restored VM up from its first run " \
        "after that restore has ended" in session.log_lines.get().message
    assert protection_for_vms([recreated]) == {}

    ReplacedVm.objects.get(old_engine_id="vm-5").session.terminate(SessionState.FAILED)
    assert job.resolve_vms() == [recreated] and recreated.pk in protection_for_vms([recreated])


def test_only_a_job_that_chooses_vms_by_name_follows_them():
    _, _, (web1, db1) = factories.inventory()
    # A tag job keeps the VMs it chose by name before: unused, and left as they are.
    job = factories.job(vms=[web1], selection=VmSelection.TAG, tag="production")
    recreated = factories.restored_in_place(web1)
    recreated.tags = ["production"]
    recreated.save()

    session = backup_session(job)
    assert _follow(session) == []
    assert list(job.vms.all()) == [web1] and not session.log_lines.exists()
    assert job.resolve_vms() == [recreated]


@pytest.mark.parametrize("selection", [VmSelection.TAG, VmSelection.CLUSTER])
def test_a_tag_or_cluster_job_leaves_alone_the_vm_a_running_restore_is_still_finishing(selection):
    _, cluster, (web1, db1) = factories.inventory()
    job = factories.job(selection=selection, tag="production", cluster=cluster)
    # Synced while the restore renames it, adds its NICs and gives its description back.
    recreated = factories.restored_in_place(web1, state=SessionState.RUNNING)
    restore = ReplacedVm.objects.get(old_engine_id=web1.engine_id).session
    VM.objects.filter(pk=recreated.pk).update(name=f"web1-restoring-{restore.pk}", tags=["production"],
                                              description=f"vbr:{restore.pk} restore")
    # Another running session's tag, and a tag that only starts alike, don't hide a VM.
    other = Session.objects.create(name="other restore", kind=SessionKind.RESTORE, state=SessionState.RUNNING)
    VM.objects.filter(pk=db1.pk).update(description=f"vbr:{other.pk}{restore.pk} restore")
    expected = [] if selection == VmSelection.TAG else ["db1"]

    assert [vm.name for vm in job.resolve_vms()] == expected and job.vm_count() == len(expected)

    restore.terminate(SessionState.SUCCESS)
    assert sorted(vm.name for vm in job.resolve_vms())[-1] == f"web1-restoring-{restore.pk}"
    assert job.vm_count() == len(expected) + 1


def test_a_re_created_vm_deleted_since_must_be_chosen_again():
    _, _, (web1,) = factories.inventory(vm_names=("web1",))
    job = factories.job(vms=[web1])
    recreated = factories.restored_in_place(web1)
    VM.objects.filter(pk=recreated.pk).update(removed=True)  # deleted from the engine, then synced

    session = backup_session(job)
    assert _follow(session) == [web1]
    assert "was re-created by an in-place restore with a new engine id (vm-9), and that VM was deleted " \
        "from the engine since: choose it again in the job" in session.log_lines.get().message


def test_a_page_of_jobs_counts_their_vms_with_two_queries_whatever_its_length(django_assert_num_queries):
    from jobs.models import BackupJob
    from jobs.models.jobs import vm_counts

    _, _, vms = factories.inventory(vm_names=("web1", "db1", "app1", "mail1"))
    for n, vm in enumerate(vms[:3]):
        factories.job(f"job{n}", vms=[vm, vms[3]])
        factories.restored_in_place(vm, f"vm-{n}b")
    jobs = list(BackupJob.objects.prefetch_related("vms"))

    with django_assert_num_queries(2):  # the links of the page, then the VMs in their place
        counts = vm_counts(jobs)

    assert list(counts.values()) == [2, 2, 2]
    assert [job.vm_count() for job in jobs] == [len(job.resolve_vms()) for job in jobs] == [2, 2, 2]


def test_restore_code_follows_the_link_of_an_in_place_restore_still_finishing():
    from jobs.models.replaced_vms import current_vm_engine_id, current_vm_row

    _, _, (web1,) = factories.inventory(vm_names=("web1",))
    recreated = factories.restored_in_place(web1, "vm-0b", state=SessionState.RUNNING)

    # Jobs wait until that restore has ended; a restore started meanwhile must not re-create vm-0.
    assert current_vm_engine_id("vm-0", web1.manager_id) == "vm-0"
    assert current_vm_engine_id("vm-0", web1.manager_id, settled=False) == "vm-0b"
    assert current_vm_row(web1.manager_id, "vm-0", settled=False) == recreated


def _restore_that_gave_up_waiting(point, *, kept=True):
    """A restore in place that failed waiting for the original to go, the removal accepted or not."""
    return Session.objects.create(
        name=f"Restore of {point.vm_name}", kind=SessionKind.RESTORE, state=SessionState.FAILED,
        options={"restore": {"kind": "vm", "point": point.pk, "replace": True},
                 "created": {"transfers": [], "vms": ["vm-9" if kept else "vm-8"], "disks": [], "kept": kept}})


def test_a_sync_that_sees_the_original_gone_links_the_vm_a_restore_gave_up_waiting_for():
    from inventory.sync import store_inventory
    from plugin.engine import ClusterInfo, Inventory, VmInfo

    manager, _, (web1, db1) = factories.inventory()
    point = factories.restore_point(web1, factories.repository(), timezone.now())
    gave_up = _restore_that_gave_up_waiting(point)
    _restore_that_gave_up_waiting(point, kept=False)  # refused: its VM was removed, nothing to link
    cluster = ClusterInfo(id="c1", name="Production")
    restored = VmInfo(id="vm-9", name="web1", status="down", cluster_id="c1")
    db = VmInfo(id=db1.engine_id, name="db1", status="up", cluster_id="c1")

    store_inventory(manager, Inventory(clusters=[cluster], vms=[
        VmInfo(id=web1.engine_id, name="web1", status="down", cluster_id="c1"), restored, db]))
    assert not ReplacedVm.objects.exists()  # the original is still there: no link yet

    store_inventory(manager, Inventory(clusters=[cluster], vms=[restored, db]))
    [link] = ReplacedVm.objects.all()
    assert (link.manager, link.old_engine_id, link.engine_id, link.session) == (manager, "vm-0", "vm-9", gave_up)
    job = factories.job(vms=[web1])
    assert [vm.engine_id for vm in job.resolve_vms()] == ["vm-9"]
