"""The periodic sync schedule and the demo manager."""

import pytest
from django_q.models import Schedule

from inventory.choices import ManagerState
from inventory.models import VM, Manager
from inventory.schedules import SYNC_SCHEDULE_NAME, ensure_schedules
from inventory.setup import DEMO_MANAGER_NAME, ensure_demo_manager


@pytest.mark.django_db
def test_the_sync_schedule_is_created_once_and_follows_the_interval_setting(settings):
    settings.VBR_SYNC_INTERVAL_MINUTES = 7
    ensure_schedules()
    ensure_schedules()
    schedule = Schedule.objects.get(name=SYNC_SCHEDULE_NAME)
    assert schedule.minutes == 7 and schedule.func == "inventory.tasks.sync_all_managers"
    settings.VBR_SYNC_INTERVAL_MINUTES = 30
    ensure_schedules()
    assert Schedule.objects.get(name=SYNC_SCHEDULE_NAME).minutes == 30
    assert Schedule.objects.filter(name=SYNC_SCHEDULE_NAME).count() == 1


@pytest.mark.integration
@pytest.mark.django_db
def test_the_simulator_becomes_the_synced_demo_manager(simulator):
    manager = ensure_demo_manager(simulator.url, simulator.ca_file, simulator.password)
    assert manager.name == DEMO_MANAGER_NAME and manager.state == ManagerState.CONNECTED
    assert VM.objects.filter(manager=manager, name="small-vm1").exists()
    again = ensure_demo_manager(simulator.url, simulator.ca_file, simulator.password)
    assert again.pk == manager.pk and Manager.objects.count() == 1
