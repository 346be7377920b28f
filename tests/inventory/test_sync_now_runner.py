"""Sync now, end to end: the page's request reaches a real control runner and the row turns connected."""

import time

import pytest
from django.urls import reverse

from inventory.choices import ManagerState
from inventory.models import VM, Manager
from tests.support.processes import manage_py, running

pytestmark = pytest.mark.integration


def test_sync_now_runs_on_the_control_runner_and_the_row_stops_polling(
        simulator, live_env, output_dir, client_as):
    manager = Manager.objects.create(name="sim", url=simulator.url, username=simulator.username,
                                     password=simulator.password,
                                     ca_certificate=simulator.ca_file.read_text())
    client = client_as("Administrator")
    row_url = reverse("inventory:manager_row", args=[manager.pk])
    with running(manage_py("qcluster"), live_env, output_dir / "control.log", graceful=False):
        response = client.post(reverse("inventory:manager_sync", args=[manager.pk]),
                               headers={"HX-Request": "true"})
        assert b"every 2s" in response.content
        deadline = time.monotonic() + 90
        while client.get(row_url).status_code != 286 and time.monotonic() < deadline:
            time.sleep(0.5)
    manager.refresh_from_db()
    assert manager.state == ManagerState.CONNECTED, (output_dir / "control.log").read_text()[-3000:]
    assert VM.objects.filter(manager=manager, name="small-vm1").exists()
    assert b"Connected" in client.get(row_url).content
