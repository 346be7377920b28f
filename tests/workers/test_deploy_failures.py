"""Worker deployments that fail: what they made in the engine is removed, and the worker says so.

Failures are the simulator's injected faults: the next engine call of a kind answers 409.
The launcher is cloud-init, so no runner is started: what counts is the engine's side.
"""

import pytest
from django.core.management import call_command

from inventory.models import StorageDomain
from plugin import engine as ovirt
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
