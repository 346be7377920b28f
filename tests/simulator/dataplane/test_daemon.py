"""The imageio daemon runs with its own configuration and leaves nothing behind."""

import json
import ssl
import urllib.request

import pytest

from simulator.dataplane import DataPlane, DataPlaneError

from .conftest import processes_using


def test_it_serves_https_on_the_port_it_picked(dataplane, ca_file):
    context = ssl.create_default_context(cafile=ca_file)
    with urllib.request.urlopen(f"https://127.0.0.1:{dataplane.port}/info/",
                                context=context) as resp:
        assert resp.status == 200
        assert "version" in json.loads(resp.read())


def test_stop_leaves_no_process(tmp_path, pki, ca_file):
    plane = DataPlane(tmp_path / "state", tls=pki)
    plane.start()
    volume = tmp_path / "disk.raw"
    plane.create_volume(volume, "raw", 4 * 1024 * 1024)
    plane.open_transfer("t1", volume, "raw", "download", "raw", 4 * 1024 * 1024, 60, 60)
    assert processes_using(plane.home) != []
    assert processes_using(plane.sock_dir) != []

    plane.stop()

    assert processes_using(plane.home) == []
    assert processes_using(plane.sock_dir) == []
    assert not plane.sock_dir.exists()


def test_it_starts_again_on_the_same_state(tmp_path, pki):
    plane = DataPlane(tmp_path / "state", tls=pki)
    plane.start()
    plane.stop()
    plane.start()
    try:
        assert plane.port
    finally:
        plane.stop()
    assert processes_using(plane.home) == []


def test_it_ends_a_daemon_that_a_crashed_run_left_behind(tmp_path, pki):
    crashed = DataPlane(tmp_path / "state", tls=pki)
    crashed.start()
    orphan = crashed.daemon._process
    # The process object is forgotten, as when the simulator died: only the pid file remains.
    crashed.daemon._process = None

    plane = DataPlane(tmp_path / "state", tls=pki)
    try:
        plane.start()
        assert orphan.wait(10) is not None
    finally:
        plane.stop()
        if orphan.poll() is None:
            orphan.kill()
            orphan.wait()
    assert processes_using(plane.home) == []


def test_transfers_need_a_running_daemon(tmp_path, pki):
    plane = DataPlane(tmp_path / "state", tls=pki)
    volume = tmp_path / "disk.raw"
    plane.create_volume(volume, "raw", 1024 * 1024)
    with pytest.raises(DataPlaneError, match="not running"):
        plane.open_transfer("t1", volume, "raw", "download", "raw", 1024 * 1024, 60, 60)
    assert processes_using(plane.sock_dir) == []
