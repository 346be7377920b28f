"""Whether a VM can take restored disks now (jobs.restore.placement), on the engine's records.

The simulator's VMs pass through powering_up and powering_down only for a moment,
so the VM states are staged here as the plain records plugin.engine returns.
"""

import pytest

from jobs.restore.placement import check_vm_takes_disks
from jobs.restore.points import RestoreError
from plugin.engine import VmInfo


@pytest.mark.parametrize("status", ["migrating", "powering_up", "image_locked", "saving_state"])
def test_a_vm_neither_up_paused_nor_down_takes_no_disk(status):
    with pytest.raises(RestoreError, match=f"VM web2 is {status.replace('_', ' ')}: .*up, paused or down"):
        check_vm_takes_disks(VmInfo(id="vm-2", name="web2", status=status), {"data_restored": "virtio_scsi"})


@pytest.mark.parametrize("status, interface", [("up", "virtio_scsi"), ("paused", "virtio"), ("up", "sata"),
                                               ("down", "ide"), ("down", "spapr_vscsi")])
def test_what_the_engine_plugs_or_attaches_cold_is_let_through(status, interface):
    check_vm_takes_disks(VmInfo(id="vm-2", name="web2", status=status), {"data_restored": interface})


@pytest.mark.parametrize("status", ["up", "paused"])
def test_a_running_vm_is_not_given_a_disk_the_engine_cant_hot_plug(status):
    with pytest.raises(RestoreError, match=r"can't hot plug .*: old_restored \(ide\), "
                                           r"spapr_restored \(spapr_vscsi\)\. Shut the VM down"):
        check_vm_takes_disks(VmInfo(id="vm-2", name="web2", status=status),
                             {"data_restored": "virtio_scsi", "old_restored": "ide", "spapr_restored": "spapr_vscsi"})
