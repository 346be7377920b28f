"""The simulator's command line: guest-write, disk-image, errors that say what to do."""

import subprocess
import sys

from simulator.testing import ROOT
from tests.simulator.support import qemu_compare, snapshot_copy, vm_disks, vm_named


def test_guest_write_changes_exactly_the_disk_it_names(sim, connection, tmp_path):
    os_disk, data_disk = vm_disks(connection, vm_named(connection, "small-vm1"))
    os_path, os_fmt = sim.disk_image(os_disk.id)
    data_path, data_fmt = sim.disk_image(data_disk.id)
    assert (os_fmt, data_fmt) == ("qcow2", "raw")
    os_before = snapshot_copy(os_path, os_fmt, tmp_path / "os.qcow2")
    data_before = snapshot_copy(data_path, data_fmt, tmp_path / "data.qcow2")
    done = sim.cli("guest-write", "--vm", "small-vm1", "--disk", "small-vm1_data",
                   "--offset", "64K", "--length", "128K", "--seed", "5")
    assert "131072 bytes" in done.stdout
    assert qemu_compare(os_path, os_fmt, os_before, "qcow2") == ""
    assert qemu_compare(data_path, data_fmt, data_before, "qcow2") != ""


def test_guest_write_outside_the_disk_is_refused(sim):
    done = sim.cli("guest-write", "--vm", "small-vm1", "--offset", "1G", "--length", "1M",
                   check=False)
    assert done.returncode != 0 and "outside the disk" in done.stderr
    done = sim.cli("guest-write", "--vm", "nope", "--offset", "0", "--length", "1", check=False)
    assert done.returncode != 0 and "nope" in done.stderr


def test_commands_without_a_running_simulator_say_how_to_start_it(tmp_path):
    done = subprocess.run([sys.executable, "-m", "simulator", "disk-image", "--disk", "x",
                           "--state", str(tmp_path)], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode != 0 and "python -m simulator serve" in done.stderr


def test_an_unknown_seed_is_refused(tmp_path):
    done = subprocess.run([sys.executable, "-m", "simulator", "serve", "--state", str(tmp_path),
                           "--seed", "huge"], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode != 0 and "inventory:N" in done.stderr
