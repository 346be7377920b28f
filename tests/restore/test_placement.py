"""Restored disks into an existing VM (jobs.restore.placement), on the engine's records.

The simulator's VMs pass through powering_up and powering_down only for a moment, so the
VM states are staged here as the plain records plugin.engine returns, and the attach step
runs against the engine facade patched (autospec) at its one seam.
"""

from unittest import mock

import pytest

from jobs.models import Session
from jobs.restore.placement import ATTACHABLE_STATES, attach_to_vm, check_vm_takes_disks, plugged
from jobs.restore.points import RestoreError
from jobs.restore.run import RestoreRun
from plugin.engine import VmInfo
from plugin.errors import EngineError, EngineTimeout


@pytest.mark.parametrize("status", ["suspended", "saving_state"])
def test_a_suspended_vm_is_refused_before_anything_is_made(status):
    with pytest.raises(RestoreError, match=f"VM web2 is {status.replace('_', ' ')}: .*resume it or shut it down"):
        check_vm_takes_disks(VmInfo(id="vm-2", name="web2", status=status))


@pytest.mark.parametrize("status", ["up", "paused", "down", "migrating", "powering_up", "powering_down",
                                    "reboot_in_progress", "image_locked", "wait_for_launch", "not_responding"])
def test_a_vm_that_is_or_may_become_up_paused_or_down_is_let_through(status):
    check_vm_takes_disks(VmInfo(id="vm-2", name="web2", status=status))


@pytest.mark.parametrize("status, interface, active", [
    ("up", "virtio_scsi", True), ("paused", "virtio", True),
    ("up", "sata", False), ("paused", "ide", False), ("up", "spapr_vscsi", False),
    ("down", "sata", True), ("down", "ide", True), ("down", "spapr_vscsi", True)])
def test_a_running_vm_is_hot_plugged_only_virtio_and_virtio_scsi_disks(status, interface, active):
    assert plugged(status, interface) is active


@pytest.fixture
def run(db, settings):
    settings.VBR_ENGINE_WAIT_TIMEOUT = 42
    return RestoreRun(Session.objects.create(name="restore"), request=None, point=None, manager=None,
                      engine=object())


DISKS = [("data_restored", "disk-1", "virtio_scsi"), ("win_restored", "disk-2", "sata")]


def test_the_disks_wait_for_a_migrating_vm_and_what_cant_be_hot_plugged_goes_in_inactive(run):
    migrating = VmInfo(id="vm-2", name="web2", status="migrating")
    with mock.patch("plugin.engine.wait_vm_status", autospec=True,
                    return_value=VmInfo(id="vm-2", name="web2", status="up")) as wait, \
            mock.patch("plugin.engine.attach_disk", autospec=True) as attach:
        summary = attach_to_vm(run, migrating, DISKS)

    wait.assert_called_once_with(run.engine, "vm-2", ATTACHABLE_STATES, timeout=42, should_stop=run.should_stop)
    assert attach.call_args_list == [
        mock.call(run.engine, "vm-2", "disk-1", interface="virtio_scsi", bootable=False, active=True),
        mock.call(run.engine, "vm-2", "disk-2", interface="sata", bootable=False, active=False)]
    assert summary == "Restored 2 disk(s) and attached them to VM web2."
    [warning] = run.session.log_lines.filter(level="warning")
    assert "VM web2 is up" in warning.message and "win_restored (sata) attached inactive" in warning.message


def test_a_vm_that_never_settles_leaves_the_disks_floating_rather_than_lost(run):
    with mock.patch("plugin.engine.wait_vm_status", autospec=True,
                    side_effect=EngineTimeout("Gave up waiting for VM vm-2 to be down/paused/up after 42 s.")), \
            mock.patch("plugin.engine.attach_disk", autospec=True) as attach:
        summary = attach_to_vm(run, VmInfo(id="vm-2", name="web2", status="not_responding"), DISKS)

    attach.assert_not_called()
    assert summary.startswith("Restored 2 disk(s) as floating disks: data_restored, win_restored")
    [warning] = run.session.log_lines.filter(level="warning")
    assert "after 42 s" in warning.message and "attach them once the VM is up, paused or down" in warning.message


def test_a_vm_started_between_two_attaches_keeps_every_restored_disk(run):
    # The wait saw the VM down; it started before the SATA disk's attach, which the engine refuses.
    refused = EngineError("Engine refused attaching a disk to a VM: Cannot hot plug.", code=409)
    with mock.patch("plugin.engine.wait_vm_status", autospec=True,
                    return_value=VmInfo(id="vm-2", name="web2", status="down")), \
            mock.patch("plugin.engine.attach_disk", autospec=True, side_effect=[None, refused]) as attach:
        summary = attach_to_vm(run, VmInfo(id="vm-2", name="web2", status="down"), DISKS)

    assert attach.call_count == 2
    assert summary == ("Restored 2 disk(s); attached: data_restored; left floating: win_restored; "
                       "VM web2 refused them.")
    [warning] = run.session.log_lines.filter(level="warning")
    assert "refused to attach disk win_restored to VM web2: Engine refused" in warning.message
    assert "left floating: win_restored): attach the floating ones by hand" in warning.message
