"""Worker deployments that fail: what they made in the engine is removed, and the worker says so.

Failures are the simulator's injected faults: the next engine call of a kind answers 409.
The launcher is cloud-init, so no runner is started: what counts is the engine's side.
"""

from unittest import mock

import pytest
from django.core.management import call_command

from inventory.models import StorageDomain
from plugin import engine as ovirt
from plugin.errors import EngineTimeout
from workers import deployment
from workers.choices import WorkerState
from workers.models import Worker

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def cloud_init(sim, runner_settings):
    runner_settings.VBR_WORKER_LAUNCHER = "cloud-init"
    yield
    sim.cli("fault", "clear")


def refuse_next(sim, call: str) -> None:
    sim.cli("fault", "add", "fail", "--match", call, "--count", "1", "--detail", f"[Refused {call}]")


def engine_state(manager) -> tuple[set, set]:
    with ovirt.connect(manager.credentials()) as engine:
        return {vm.name for vm in ovirt.list_vms(engine)}, {d.name for d in ovirt.list_disks(engine)}


def boot_disk_worker(manager, new_worker, name: str) -> Worker:
    return new_worker(name, storage_domain=StorageDomain.objects.get(manager=manager, name="data1"),
                      vnic_profile="ovirtmgmt")


@pytest.mark.parametrize(("call", "removed"), [
    ("POST nics", "VM vbr-worker-w with its disks"),
    ("GET disks", "VM vbr-worker-w with its disks and disk vbr-worker-w-boot (not attached yet)"),  # still locked
    ("POST diskattachments", "VM vbr-worker-w with its disks and disk vbr-worker-w-boot (not attached yet)"),
    ("POST start", "VM vbr-worker-w with its disks"),  # the boot disk attached
])
def test_a_deployment_refused_after_the_vm_was_made_removes_what_it_made(sim, manager, new_worker, call,
                                                                         removed):
    before = engine_state(manager)
    refuse_next(sim, call)

    with pytest.raises(deployment.DeploymentError, match=f"Refused {call}"):
        deployment.deploy(boot_disk_worker(manager, new_worker, "w"), wait=False)

    assert engine_state(manager) == before
    worker = Worker.objects.get(name="w")
    assert worker.state == WorkerState.FAILED and worker.engine_vm_id == ""
    assert f"Removed what it had created in the engine: {removed}. Start deploys" in worker.last_error


def test_a_deployment_refused_at_the_vm_leaves_the_engine_untouched(sim, manager, new_worker):
    before = engine_state(manager)
    refuse_next(sim, "POST vms")

    with pytest.raises(deployment.DeploymentError, match="Refused POST vms.* Nothing was created in the engine"):
        deployment.deploy(boot_disk_worker(manager, new_worker, "novm"), wait=False)

    assert engine_state(manager) == before
    assert Worker.objects.get(name="novm").state == WorkerState.FAILED


def test_a_vm_that_could_not_be_removed_is_named_and_remove_worker_removes_it(sim, manager, new_worker):
    before = engine_state(manager)
    refuse_next(sim, "POST start")
    refuse_next(sim, "DELETE vms")

    with pytest.raises(deployment.DeploymentError, match="Left in the engine: its VM vbr-worker-stuck could not be removed "
                                                         r"\(.*Refused DELETE vms.*\): Remove the worker "
                                                         r"\(or run manage.py remove_worker stuck\)"):
        deployment.deploy(boot_disk_worker(manager, new_worker, "stuck"), wait=False)
    assert Worker.objects.get(name="stuck").engine_vm_id  # what Remove deletes

    call_command("remove_worker", "stuck")

    assert engine_state(manager) == before
    assert not Worker.objects.filter(name="stuck").exists()


def test_a_vm_whose_runner_never_reports_in_is_kept_for_inspection_until_removed(sim, manager, new_worker):
    # Chosen: the VM booted, and only what it runs can tell why its runner can't reach the server.
    before = engine_state(manager)

    with pytest.raises(deployment.DeploymentError, match="no heartbeat"):
        deployment.deploy(boot_disk_worker(manager, new_worker, "silent"), timeout=1)

    worker = Worker.objects.get(name="silent")
    assert worker.state == WorkerState.FAILED
    assert "VM vbr-worker-silent is kept running" in worker.last_error
    assert "manage.py remove_worker silent" in worker.last_error
    with ovirt.connect(manager.credentials()) as engine:
        assert ovirt.get_vm(engine, worker.engine_vm_id).status == "up"

    call_command("remove_worker", "silent")

    assert engine_state(manager) == before


def test_a_deployment_interrupted_while_its_boot_disk_is_made_removes_it(manager, new_worker):
    before = engine_state(manager)
    with (mock.patch.object(deployment.ovirt, "wait_disk_ok", autospec=True, side_effect=KeyboardInterrupt),
          pytest.raises(KeyboardInterrupt)):
        deployment.deploy(boot_disk_worker(manager, new_worker, "ctrlc"), wait=False)

    assert engine_state(manager) == before
    assert Worker.objects.get(name="ctrlc").state == WorkerState.FAILED


def test_remove_finds_a_boot_disk_a_killed_deployment_left_floating(manager, new_worker):
    before = engine_state(manager)
    worker = boot_disk_worker(manager, new_worker, "killed")
    with ovirt.connect(manager.credentials()) as engine:  # as the killed deployment made it
        ovirt.create_disk(engine, name="vbr-worker-killed-boot", storage_domain_id=worker.storage_domain.engine_id,
                          provisioned_size=2**20, description="Boot disk of backup worker killed")

    call_command("remove_worker", "killed")

    assert engine_state(manager) == before


def test_a_vm_made_without_the_engines_answer_is_found_and_removed(manager, new_worker):
    before = engine_state(manager)

    def made_but_unanswered(engine, spec):
        real_create_vm(engine, spec)
        raise EngineTimeout("The engine did not answer in time while creating a VM.")

    real_create_vm = ovirt.create_vm
    with (mock.patch.object(deployment.ovirt, "create_vm", autospec=True, side_effect=made_but_unanswered),
          pytest.raises(deployment.DeploymentError, match="did not answer")):
        deployment.deploy(boot_disk_worker(manager, new_worker, "lost"), wait=False)

    assert engine_state(manager) == before
    assert "Removed what it had created in the engine: VM vbr-worker-lost" in Worker.objects.get(name="lost").last_error
