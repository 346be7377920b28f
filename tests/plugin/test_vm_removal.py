"""remove_vm and ensure_vm_down with VM statuses the simulator doesn't produce (image_locked,
image_illegal): the engine's answers are scripted at plugin.engine.vms' own calls (autospec)."""

import time
from contextlib import contextmanager
from unittest import mock

import pytest

from plugin.engine import vms
from plugin.engine.records import DiskAttachmentInfo, DiskInfo, VmInfo
from plugin.errors import EngineTimeout, NotFound


@contextmanager
def scripted(statuses: list[str], **vm):
    """get_vm answering each status in turn (the last one ever after), then NotFound once deleted."""
    state = {"left": list(statuses), "deleted": False}

    def get_vm(engine, vm_id):
        if state["deleted"]:
            raise NotFound("gone")
        status = state["left"].pop(0) if len(state["left"]) > 1 else state["left"][0]
        return VmInfo(id=vm_id, name="w", status=status, **vm)

    def delete_vm(engine, vm_id, keep_disks=False):
        state["deleted"] = True

    with mock.patch.multiple(vms, autospec=True, get_vm=mock.DEFAULT, delete_vm=mock.DEFAULT,
                             stop_vm=mock.DEFAULT, get_disk=mock.DEFAULT) as calls:
        calls["get_vm"].side_effect, calls["delete_vm"].side_effect = get_vm, delete_vm
        yield calls


@pytest.mark.parametrize("status", ["image_illegal", "image_locked", "down"])
def test_a_vm_that_isnt_running_is_not_stopped(status):
    with scripted([status]) as calls:
        assert vms.ensure_vm_down(object(), "vm1").status == status
    calls["stop_vm"].assert_not_called()


def test_an_image_illegal_vm_is_deleted_without_a_stop_the_engine_would_refuse():
    with scripted(["image_illegal"]) as calls:
        assert vms.remove_vm(object(), "vm1", timeout=5)
    calls["stop_vm"].assert_not_called()
    calls["delete_vm"].assert_called_once()


def test_an_image_locked_vm_is_deleted_once_unlocked_and_stopped_only_if_running():
    with scripted(["image_locked", "image_locked", "up", "up", "down"]) as calls:
        assert vms.remove_vm(object(), "vm1", timeout=5)
    calls["stop_vm"].assert_called_once()
    calls["delete_vm"].assert_called_once()


def test_the_timeout_of_a_removal_is_for_all_of_its_steps():
    disks = tuple(DiskAttachmentInfo(id=f"d{i}", disk_id=f"d{i}") for i in range(3))
    with scripted(["down"], disk_attachments=disks) as calls:
        calls["get_disk"].side_effect = lambda engine, disk_id: DiskInfo(id=disk_id, name=disk_id,
                                                                        status="locked")
        started = time.monotonic()
        with pytest.raises(EngineTimeout):
            vms.remove_vm(object(), "vm1", timeout=0.3)
    assert time.monotonic() - started < 0.6  # not 0.3 s for each of the three locked disks
    calls["delete_vm"].assert_not_called()
