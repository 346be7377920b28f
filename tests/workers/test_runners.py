"""Workers end to end: worker VMs deployed in the simulator, real runners (runworker), real
imageio transfers, a real data mover."""

import os
import signal
import subprocess
import time
from contextlib import contextmanager

import pytest

from plugin import engine as ovirt
from repositories.store import ChunkStore, block_digest, is_zero
from tests.support.processes import manage_py, running
from tests.workers.conftest import blocks_of
from workers import deployment, dispatch
from workers.choices import DiskTaskState, WorkerState
from workers.models import Worker
from workers.services import check_workers

pytestmark = pytest.mark.integration

TASK_TIMEOUT = 120.0


@contextmanager
def download(manager, disk):
    """An open download transfer of the disk; finalized afterwards."""
    with ovirt.connect(manager.credentials()) as engine:
        transfer = ovirt.create_transfer(engine, direction="download", disk_id=disk.engine_id,
                                         description="vbr:test workers", format="raw")
        transfer = ovirt.wait_transfer_ready(engine, transfer.id)
    try:
        yield transfer.transfer_url
    finally:
        with ovirt.connect(manager.credentials()) as engine:
            ovirt.finalize_transfer(engine, transfer.id)
            ovirt.wait_transfer_ended(engine, transfer.id)


def disk_named(manager, name):
    from inventory.models import Disk

    return Disk.objects.get(manager=manager, name=name)


def wait_task(task, timeout: float = TASK_TIMEOUT, until=None):
    deadline = time.monotonic() + timeout
    until = until or (lambda t: t.is_terminal)
    while time.monotonic() < deadline:
        task.refresh_from_db()
        if until(task):
            return task
        time.sleep(0.2)
    raise AssertionError(f"disk task {task.pk} still {task.state} after {timeout} s: {task.error}")


def assert_index_equals_source(sim, task, tmp_path):
    path, fmt = sim.disk_image(task.disk_engine_id)
    raw = tmp_path / f"{task.disk_engine_id}.raw"
    subprocess.run(["qemu-img", "convert", "-U", "-f", "qcow2" if fmt in ("cow", "qcow2") else "raw",
                    "-O", "raw", str(path), str(raw)], check=True)
    image = raw.read_bytes()
    index = task.result["index"]
    assert index["size"] == len(image)
    for number, block in enumerate(blocks_of(image)):
        assert index["blocks"][number] == (None if is_zero(block) else block_digest(block)), number


def backup(manager, repository, disk, url, worker):
    return dispatch.submit_backup_disk(session_id=None, manager=manager, repository=repository,
                                       disk=disk, transfer_url=url, worker=worker)


def test_a_deployed_worker_moves_a_disk_through_its_runner(sim, manager, repository, new_worker,
                                                           tmp_path):
    worker = deployment.deploy(new_worker("w1"), timeout=60)
    assert worker.state == WorkerState.READY and worker.engine_vm_id
    assert worker.software_version and worker.runner_pid
    with ovirt.connect(manager.credentials()) as engine:
        assert ovirt.get_vm(engine, worker.engine_vm_id).status == "up"
    assert dispatch.choose_worker(worker.cluster, manager) == worker
    disk = disk_named(manager, "small-vm2_data")
    with download(manager, disk) as url:
        task = wait_task(backup(manager, repository, disk, url, worker))
    assert task.state == DiskTaskState.SUCCEEDED, task.error
    assert task.worker == worker and task.bytes_done == task.bytes_total > 0
    assert task.result["figures"]["bytes_sent"] > 0
    assert_index_equals_source(sim, task, tmp_path)


def test_two_workers_move_disks_at_the_same_time(sim, manager, repository, new_worker, tmp_path,
                                                 monkeypatch):
    monkeypatch.setenv("VBR_WORKER_MAX_MBPS", "32")  # long enough to overlap (2 s and 3.5 s)
    workers = [deployment.deploy(new_worker(name, max_tasks=1), timeout=60) for name in ("a", "b")]
    disks = [disk_named(manager, "small-vm2_data"), disk_named(manager, "small-vm2_os")]
    with download(manager, disks[0]) as url0, download(manager, disks[1]) as url1:
        first = backup(manager, repository, disks[0], url0,
                       dispatch.choose_worker(workers[0].cluster, manager))
        second_worker = dispatch.choose_worker(workers[0].cluster, manager)
        second = backup(manager, repository, disks[1], url1, second_worker)
        tasks = [wait_task(first), wait_task(second)]
    assert {t.worker_id for t in tasks} == {w.pk for w in workers}
    assert all(t.state == DiskTaskState.SUCCEEDED for t in tasks), [t.error for t in tasks]
    assert tasks[0].started < tasks[1].finished and tasks[1].started < tasks[0].finished
    for task in tasks:
        assert_index_equals_source(sim, task, tmp_path)


def test_a_killed_runner_loses_its_task_to_another_worker(sim, manager, repository, new_worker,
                                                          tmp_path, monkeypatch):
    monkeypatch.setenv("VBR_WORKER_MAX_MBPS", "16")  # slow enough to be killed mid-disk
    doomed = deployment.deploy(new_worker("doomed"), timeout=60)
    monkeypatch.delenv("VBR_WORKER_MAX_MBPS")  # the spare moves the whole disk at full speed
    spare = deployment.deploy(new_worker("spare"), timeout=60)
    disk = disk_named(manager, "small-vm2_os")
    with download(manager, disk) as url:
        task = backup(manager, repository, disk, url, doomed)
        wait_task(task, until=lambda t: t.state == DiskTaskState.RUNNING and t.bytes_done > 0)
        os.killpg(doomed.runner_pid, signal.SIGKILL)
        time.sleep(7)  # silent past VBR_WORKER_HEARTBEAT_TIMEOUT (6 s)
        outcome = check_workers()
        assert outcome["unreachable"] == ["doomed"]
        task.refresh_from_db()
        assert task.worker == spare and task.attempt == 2
        assert task.attempts[0]["worker"] == "doomed" and "lost" in task.attempts[0]["error"]
        task = wait_task(task)
    assert Worker.objects.get(name="doomed").state == WorkerState.UNREACHABLE
    assert task.state == DiskTaskState.SUCCEEDED, task.error
    assert_index_equals_source(sim, task, tmp_path)
    digests = sorted({d for d in task.result["index"]["blocks"] if d})
    assert digests and ChunkStore.open(repository.path).missing(digests) == []


def test_the_embedded_worker_moves_disks_when_the_cluster_has_none(sim, manager, repository,
                                                                   runner_settings, live_env,
                                                                   output_dir, tmp_path):
    disk = disk_named(manager, "small-vm2_data")
    assert dispatch.choose_worker(disk.vm.cluster, manager) is None
    with running(manage_py("runworker", "embedded"), live_env, output_dir / "embedded.log"), \
            download(manager, disk) as url:
        task = wait_task(backup(manager, repository, disk, url, None))
    assert task.state == DiskTaskState.SUCCEEDED, task.error
    assert task.queue == "embedded" and task.worker_name == "embedded worker"
    assert_index_equals_source(sim, task, tmp_path)


def test_a_running_task_is_cancelled_within_seconds(sim, manager, repository, new_worker,
                                                    monkeypatch):
    monkeypatch.setenv("VBR_WORKER_MAX_MBPS", "4")
    worker = deployment.deploy(new_worker("slow"), timeout=60)
    disk = disk_named(manager, "small-vm2_os")
    with download(manager, disk) as url:
        task = backup(manager, repository, disk, url, worker)
        wait_task(task, until=lambda t: t.bytes_done > 0)
        dispatch.request_cancel(task)
        task = wait_task(task, timeout=30)
    assert task.state == DiskTaskState.CANCELLED
    assert task.result == {}


def test_a_worker_stops_starts_is_redeployed_and_removed(sim, manager, new_worker):
    worker = deployment.deploy(new_worker("cycle"), timeout=60)
    pid = worker.runner_pid
    deployment.stop(worker)
    worker.refresh_from_db()
    assert worker.state == WorkerState.STOPPED and worker.runner_pid is None
    assert not os.path.exists(f"/proc/{pid}") or b"runworker" not in open(
        f"/proc/{pid}/cmdline", "rb").read()
    with ovirt.connect(manager.credentials()) as engine:
        assert ovirt.get_vm(engine, worker.engine_vm_id).status == "down"
    assert dispatch.choose_worker(worker.cluster, manager) is None
    worker = deployment.start(worker, timeout=60)
    assert worker.state == WorkerState.READY
    old_vm = worker.engine_vm_id
    worker = deployment.redeploy(worker, timeout=60)
    assert worker.state == WorkerState.READY and worker.engine_vm_id not in ("", old_vm)
    vm_id = worker.engine_vm_id
    deployment.remove(worker)
    assert not Worker.objects.filter(name="cycle").exists()
    with ovirt.connect(manager.credentials()) as engine:
        assert {vm_id, old_vm}.isdisjoint(vm.id for vm in ovirt.list_vms(engine))


def test_a_cloud_init_worker_vm_carries_the_payload_that_starts_its_runner(sim, manager, new_worker,
                                                                           runner_settings):
    from inventory.models import StorageDomain

    runner_settings.VBR_WORKER_LAUNCHER = "cloud-init"
    domain = StorageDomain.objects.get(manager=manager, name="data1")
    worker = deployment.deploy(new_worker("cloudy", storage_domain=domain), wait=False)
    assert worker.state == WorkerState.STARTING and worker.runner_pid is None
    connection = sim.connection()
    try:
        vm_service = connection.system_service().vms_service().vm_service(worker.engine_vm_id)
        vm = vm_service.get()
        attachments = vm_service.disk_attachments_service().list()
    finally:
        connection.close()
    assert vm.status.value == "up" and vm.name == "vbr-worker-cloudy"
    # The payload carries the server's database URL and keys: it went with the first start
    # only, and anyone who may read the VM in the engine sees none of it.
    assert vm.initialization is None or not vm.initialization.custom_script
    import json

    run_once = json.loads((sim.state_dir / "state.json").read_text())["vms"][worker.engine_vm_id]["run_once"]
    script = run_once["custom_script"]
    assert run_once["use_cloud_init"] and script.startswith("#cloud-config") and "runworker cloudy" in script
    assert "DATABASE_URL=" in script and "vbr-worker.service" in script
    from workers.runner import software_version

    assert f"ovirt-backup-server=={software_version()}" in script  # the server's own release
    assert len(attachments) == 1 and attachments[0].bootable
    with pytest.raises(deployment.DeploymentError, match="no heartbeat"):
        deployment.wait_ready(worker, timeout=2)
    worker.refresh_from_db()
    assert worker.state == WorkerState.FAILED
    # Started again from the page before its runner ever beat: the payload goes again.
    deployment.stop(worker)
    deployment.start(worker, wait=False)  # each start writes what it carried, or nothing
    run_once = json.loads((sim.state_dir / "state.json").read_text())["vms"][worker.engine_vm_id]["run_once"]
    assert "runworker cloudy" in run_once["custom_script"]


def test_deploy_worker_command_deploys_a_ready_worker_with_its_network(sim, manager,
                                                                      runner_settings):
    import json
    from io import StringIO

    from django.core.management import call_command

    from workers import launchers

    out = StringIO()
    try:
        call_command("deploy_worker", "cmd", "--cluster", "Default", "--memory", "1024",
                     "--max-tasks", "1", "--network", "ovirtmgmt", "--timeout", "60", stdout=out)
        assert "Worker cmd is ready" in out.getvalue()
        listing = StringIO()
        call_command("list_workers", "--json", stdout=listing)
        record = json.loads(listing.getvalue())[0]
        assert record["name"] == "cmd" and record["state"] == "ready" and record["software_version"]
        with ovirt.connect(manager.credentials()) as engine:
            nics = ovirt.list_nics(engine, Worker.objects.get(name="cmd").engine_vm_id)
        assert len(nics) == 1
    finally:
        for worker in Worker.objects.filter(name="cmd"):
            launchers.stop_local_runner(worker)
