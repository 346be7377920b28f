"""Replacing the original VM in an in-place restore: which VM stays when a step fails.

Unit tests that patch the one seam (plugin.engine, with autospec): an engine that
accepts a removal and then stops answering can't be staged with the simulator.
"""

from types import SimpleNamespace
from unittest import mock

import pytest

from jobs.models import Session
from jobs.restore.run import RestoreRun
from jobs.restore.vm import _replace_original
from plugin.errors import Conflict, EngineTimeout

pytestmark = pytest.mark.django_db


@pytest.fixture
def run():
    session = Session.objects.create(name="restore of web1", kind="restore", state="running")
    return RestoreRun(session=session, request=None, point=None, manager=None, engine=object())


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


def test_a_removal_that_timed_out_may_have_been_accepted_so_both_vms_stay(run, engine_calls):
    engine_calls["delete_vm"].side_effect = EngineTimeout("The engine did not answer in time")
    engine_calls["get_vm"].return_value = SimpleNamespace(id="vm-1", status="down")  # it never came
    with pytest.raises(EngineTimeout):
        _replace_original(run, ORIGINAL, "vm-2", "web1")
    assert run.past_point_of_no_return
    engine_calls["start_vm"].assert_called_once_with(run.engine, "vm-1")  # running again, as it was
    assert "check which one to keep" in run.session.log_lines.last().message


def test_a_refused_removal_keeps_the_original_running_and_lets_cleanup_remove_the_restored_vm(run, engine_calls):
    engine_calls["delete_vm"].side_effect = Conflict("The engine refused deleting a VM")
    with pytest.raises(Conflict):
        _replace_original(run, ORIGINAL, "vm-2", "web1")
    assert not run.past_point_of_no_return
    engine_calls["start_vm"].assert_called_once_with(run.engine, "vm-1")

