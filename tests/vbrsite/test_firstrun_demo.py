"""First start: firstrun makes the default repository and the schedules; demo_setup registers the
running simulator as the manager "demo" and adds the demo job, unless the demo is off or a real
manager is registered."""

from io import StringIO

import pytest
from django.core.management import call_command
from django_q.models import Schedule

from inventory.models import VM, Manager
from jobs.models import BackupJob
from repositories.models import Repository
from vbrsite import demo

pytestmark = pytest.mark.django_db


@pytest.fixture
def data_dir(settings, tmp_path):
    settings.DATA_DIR = tmp_path
    settings.ADMIN_PASSWORD = "first-run-pw"
    settings.VBR_DEMO = True
    return tmp_path


def run(*args) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_firstrun_creates_the_default_repository_and_the_schedules_once(data_dir):
    run("firstrun")
    run("firstrun")
    repository = Repository.objects.get(name="default")
    assert repository.path == str(data_dir / "repositories" / "default")
    assert (data_dir / "repositories" / "default").is_dir()
    names = set(Schedule.objects.values_list("name", flat=True))
    assert {"inventory: sync managers", "jobs: reconcile"} <= names
    assert Schedule.objects.count() == len(names)  # idempotent: no duplicates


def test_demo_setup_registers_and_syncs_the_simulator_and_adds_the_demo_job(data_dir, simulator):
    assert simulator.state_dir == data_dir / "simulator"
    run("firstrun")
    out = run("demo_setup", "--wait", "5")
    manager = Manager.objects.get(name="demo")
    assert manager.state == "connected"
    assert set(VM.objects.filter(manager=manager).values_list("name", flat=True)) == {"small-vm1", "small-vm2"}
    job = BackupJob.objects.get(name=demo.DEMO_JOB_NAME)
    assert job.schedule_kind == "manual" and job.repository.name == "default"
    assert "2 VMs synced" in out
    assert simulator.password not in out

    run("demo_setup")  # a second start changes nothing
    assert Manager.objects.count() == 1 and BackupJob.objects.count() == 1


def test_no_demo_when_turned_off(data_dir, settings, simulator):
    settings.VBR_DEMO = False
    out = run("demo_setup", "--wait", "5")
    assert "No demo: VBR_DEMO is off" in out
    assert not Manager.objects.exists() and not BackupJob.objects.exists()
    assert run("demo_setup", "--print-processes").split() == ["web", "control", "worker", "datamover"]


def test_no_demo_when_a_real_manager_is_registered(data_dir, simulator):
    Manager.objects.create(name="production", url="https://engine.example.org/ovirt-engine/api")
    out = run("demo_setup", "--wait", "5")
    assert "the manager 'production' is registered" in out
    assert not Manager.objects.filter(name="demo").exists()
    assert "simulator" not in run("demo_setup", "--print-processes").split()


def test_without_a_simulator_it_says_how_to_start_one(data_dir):
    out = run("demo_setup", "--wait", "0.5")
    assert f"python -m simulator serve --state {data_dir / 'simulator'}" in out
    assert not Manager.objects.exists()
    assert run("demo_setup", "--print-processes").split()[-1] == "simulator"


def test_a_stale_announcement_of_a_stopped_simulator_is_ignored(data_dir):
    (data_dir / "simulator").mkdir()
    (data_dir / "simulator" / "server.json").write_text(
        '{"url": "https://127.0.0.1:1/ovirt-engine/api", "host": "127.0.0.1", "port": 1, '
        '"pid": 999999, "ca_file": "x", "password": "p"}')
    assert demo.read_simulator(data_dir / "simulator") is None
