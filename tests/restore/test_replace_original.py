"""Replacing the original VM in an in-place restore: which VM stays when a step fails.

Unit tests that patch the one seam (plugin.engine, with autospec): an engine that
accepts a removal and then stops answering can't be staged with the simulator.
"""

from types import SimpleNamespace
from unittest import mock

import pytest

from inventory.models import Manager
from jobs.models import ReplacedVm, Session
from jobs.restore.run import RestoreRun
from jobs.restore.vm import _replace_original
from plugin.errors import Conflict, EngineTimeout, NotFound

pytestmark = pytest.mark.django_db


@pytest.fixture
def run():
    session = Session.objects.create(name="restore of web1", kind="restore", state="running")
    manager = Manager.objects.create(name="engine1", url="https://engine1.example/ovirt-engine/api")
    return RestoreRun(session=session, request=None, point=None, manager=manager, engine=object())


@pytest.fixture
def engine_calls():
    with mock.patch.multiple("jobs.restore.vm.ovirt", autospec=True, ensure_vm_down=mock.DEFAULT,
                             delete_vm=mock.DEFAULT, wait_vm_gone=mock.DEFAULT, rename_vm=mock.DEFAULT,
                             start_vm=mock.DEFAULT, get_vm=mock.DEFAULT) as calls:
        yield calls


ORIGINAL = SimpleNamespace(id="vm-1", name="web1", status="up")


def test_once_the_removal_is_accepted_a_failure_keeps_the_restored_vm(run, engine_calls):
    engine_calls["wait_vm_gone"].side_effect = EngineTimeout("Gave up waiting for VM vm-1 to be gone")
    with pytest.raises(EngineTimeout):
        _replace_original(run, ORIGINAL, "vm-2", "web1")
    assert run.past_point_of_no_return
    assert Session.objects.get(pk=run.session.pk).options["created"]["kept"] is True
    engine_calls["start_vm"].assert_not_called()
    assert not ReplacedVm.objects.exists()  # accepted is not gone: the original may stay


def test_once_the_original_is_gone_the_restored_vm_takes_its_place_on_its_manager(run, engine_calls):
    linked_while_waiting = []
    engine_calls["wait_vm_gone"].side_effect = lambda *args, **kwargs: linked_while_waiting.append(
        ReplacedVm.objects.exists())

    _replace_original(run, ORIGINAL, "vm-2", "web1")

    link = ReplacedVm.objects.get()
    assert (link.manager, link.old_engine_id, link.engine_id, link.session) == (run.manager, "vm-1", "vm-2", run.session)
    assert linked_while_waiting == [False]  # not before the engine showed the original gone


def test_a_removal_that_timed_out_but_went_through_lets_the_restored_vm_take_the_originals_place(run, engine_calls):
    engine_calls["delete_vm"].side_effect = EngineTimeout("The engine did not answer in time")
    engine_calls["get_vm"].side_effect = NotFound("no VM vm-1")  # the removal came through after all

    _replace_original(run, ORIGINAL, "vm-2", "web1")  # no failure: the restore carries on (NICs...)

    assert ReplacedVm.objects.filter(manager=run.manager, old_engine_id="vm-1", engine_id="vm-2").exists()
    assert run.session.log_lines.filter(message__contains="which is gone all the same").exists()
    engine_calls["rename_vm"].assert_called_once_with(run.engine, "vm-2", "web1")  # not left '-restoring-N'
    engine_calls["start_vm"].assert_not_called()


def test_a_removal_that_timed_out_may_have_been_accepted_so_both_vms_stay(run, engine_calls):
    engine_calls["delete_vm"].side_effect = EngineTimeout("The engine did not answer in time")
    engine_calls["get_vm"].return_value = SimpleNamespace(id="vm-1", status="down")  # it never came
    with pytest.raises(EngineTimeout):
        _replace_original(run, ORIGINAL, "vm-2", "web1")
    assert run.past_point_of_no_return
    engine_calls["start_vm"].assert_called_once_with(run.engine, "vm-1")  # running again, as it was
    assert "check which one to keep" in run.session.log_lines.last().message
    assert not ReplacedVm.objects.exists()


def test_a_refused_removal_keeps_the_original_running_and_lets_cleanup_remove_the_restored_vm(run, engine_calls):
    engine_calls["delete_vm"].side_effect = Conflict("The engine refused deleting a VM")
    with pytest.raises(Conflict):
        _replace_original(run, ORIGINAL, "vm-2", "web1")
    assert not run.past_point_of_no_return
    engine_calls["start_vm"].assert_called_once_with(run.engine, "vm-1")


@pytest.mark.parametrize("status", ["down", "image_locked", "image_illegal"])
def test_a_refused_removal_starts_no_original_that_wasnt_running(run, engine_calls, status):
    engine_calls["delete_vm"].side_effect = Conflict("The engine refused deleting a VM")
    with pytest.raises(Conflict):
        _replace_original(run, SimpleNamespace(id="vm-1", name="web1", status=status), "vm-2", "web1")
    engine_calls["start_vm"].assert_not_called()



@pytest.mark.parametrize("removed", [True, False])
def test_a_restore_that_ends_after_the_original_was_removed_requests_an_inventory_sync(run, removed):
    from inventory.choices import ManagerState
    from jobs.restore.driver import _finish

    run.past_point_of_no_return = removed  # failed after the engine accepted the original's removal

    _finish(run, "failed", "the engine stopped answering")

    syncing = Manager.objects.get(pk=run.manager.pk).state == ManagerState.SYNCING
    assert syncing is removed  # jobs follow the VM in its place once the inventory has it
