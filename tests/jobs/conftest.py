"""Fixtures of the jobs tests: the simulator, a data mover, a synced manager, a repository, and the runners."""

import subprocess
import sys
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.processes import free_port, manage_py, running, wait_for_port

MIB = 1024 * 1024
SESSION_TIMEOUT = 180.0


@pytest.fixture(scope="package")
def sim(tmp_path_factory):
    """One simulator (seed small) for a test module: starting it is the slow part."""
    from simulator.testing import running_simulator

    with running_simulator(tmp_path_factory.mktemp("sim") / "state", seed="small", delays=0.1) as handle:
        yield handle


@dataclass
class DataMover:
    url: str
    token: str
    path: Path


@pytest.fixture(scope="package")
def datamover(tmp_path_factory):
    """A standalone data mover over a fresh repository, for a test module."""
    home = tmp_path_factory.mktemp("datamover")
    token_file = home / "token"
    token_file.write_text("jobs-test-token")
    port = free_port()
    args = [sys.executable, "-m", "repositories.datamover", "--path", str(home / "repository"),
            "--token-file", str(token_file), "--bind", f"127.0.0.1:{port}", "--init",
            "--workers", "1", "--threads", "4"]
    with running(args, log_path=home / "datamover.log") as process:
        wait_for_port(port, process=process)
        yield DataMover(f"http://127.0.0.1:{port}", "jobs-test-token", home / "repository")


@dataclass
class Stack:
    sim: object
    manager: object
    repository: object
    output_dir: Path
    env: dict
    control: object = None
    start_control: object = None
    worker: object = None

    def vm(self, name: str):
        from inventory.models import VM

        return VM.objects.select_related("manager", "cluster").get(manager=self.manager, name=name)

    def job(self, name: str, vms: list[str], **fields):
        from jobs.models import BackupJob

        job = BackupJob.objects.create(name=name, repository=self.repository, **fields)
        job.vms.set([self.vm(v) for v in vms])
        return job

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-4000:]}"
                         for p in sorted(self.output_dir.glob("*.log")))


@pytest.fixture
def manager(sim, transactional_db):
    from inventory.models import Manager
    from inventory.sync import sync_manager

    manager = Manager.objects.create(name="sim", url=sim.url, username=sim.username, password=sim.password,
                                     ca_certificate=sim.ca_file.read_text())
    sync_manager(manager)
    return manager


@pytest.fixture
def repository(datamover, transactional_db):
    from repositories.models import Repository

    return Repository.objects.create(name="repo", path=str(datamover.path), datamover_url=datamover.url,
                                     token=datamover.token)


def runner_env(live_env: dict, **extra) -> dict:
    return {**live_env, "VBR_RUNNER_WORKERS": "2", **{k: str(v) for k, v in extra.items()}}


@pytest.fixture
def runners(sim, manager, repository, live_env, output_dir):
    """Start the control runner and the embedded worker runner with extra settings:
    ``runners(control={...}, worker={...})``; ``stack.start_control()`` starts another control runner.
    With ``start_worker=False`` no worker runner starts: ``with stack.worker(**settings):`` runs one for a block."""
    Path(live_env["VBR_DATA_DIR"]).mkdir(parents=True, exist_ok=True)  # the runners' check wants it
    with ExitStack() as started:
        def start(control: dict | None = None, worker: dict | None = None, start_worker: bool = True) -> Stack:
            env = runner_env(live_env, **(control or {}))
            stack = Stack(sim, manager, repository, output_dir, env)
            stack.start_control = lambda: started.enter_context(
                running(manage_py("qcluster"), env, output_dir / "control.log", graceful=False))
            stack.control = stack.start_control()
            stack.worker = lambda **extra: running(
                manage_py("qcluster"), {**runner_env(live_env, **extra), "Q_CLUSTER_NAME": "embedded"},
                output_dir / "worker.log", graceful=False)
            if start_worker:
                started.enter_context(stack.worker(**(worker or {})))
            return stack

        yield start


@pytest.fixture
def stack(runners):
    """The control runner and the embedded worker runner, against the test database."""
    return runners()


def engine_leftovers(stack: Stack) -> list[str]:
    """What any session left in the engine: transfers not ended, backups not finalized, our snapshots."""
    from plugin import engine as ovirt

    left = []
    with ovirt.connect(stack.manager.credentials()) as engine:
        for t in ovirt.list_transfers(engine):
            # Every transfer in these tests is ours; a real engine keeps no description on it.
            if t.phase not in ovirt.TERMINAL_PHASES:
                left.append(f"transfer {t.id} {t.phase}")
        for vm in ("small-vm1", "small-vm2"):
            vm_id = stack.vm(vm).engine_id
            left += [f"backup {b.id} {b.phase}" for b in _backups(engine, vm_id)
                     if b.phase not in ovirt.BACKUP_TERMINAL_PHASES]
            left += [f"snapshot {s.id} {s.description}" for s in ovirt.list_snapshots(engine, vm_id)
                     if ovirt.session_of(s.description)]
    return left


def _backups(engine, vm_id):
    from plugin import engine as ovirt
    from plugin.errors import NotFound

    try:
        return ovirt.list_backups(engine, vm_id)
    except NotFound:
        return []  # an engine without the backup API


def wait_for_session(session, timeout: float = SESSION_TIMEOUT, stack: Stack | None = None):
    """Poll the session until it ends; its final row."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        session.refresh_from_db()
        if session.is_terminal:
            return session
        time.sleep(0.3)
    log = "\n".join(str(line) for line in session.log_lines.all())
    raise AssertionError(f"session {session.pk} still {session.state} after {timeout} s\n{log}\n"
                         + (stack.logs() if stack else ""))


def session_log(session) -> str:
    return "\n".join(line.message for line in session.log_lines.order_by("pk"))


def export_disk(repository, manifest_id: str, disk_id: str, target: Path) -> Path:
    """A restore point's disk read back from the repository into a raw file (manifest + chunks)."""
    from repositories.store import block_length, decode_chunk
    from repositories.store.patches import read_entry

    with repository.client() as client:
        manifest = client.get_manifest(manifest_id)
        disk = manifest.disk(disk_id)

        def read(digest: str, length: int) -> bytes:
            data = decode_chunk(client.get_chunk(digest), repository.repository_key())
            assert len(data) == length, f"chunk {digest}: {len(data)} bytes, {length} expected"
            return data

        with open(target, "wb") as f:
            f.truncate(disk.size)
            for index, entry in enumerate(disk.blocks):
                if entry is not None:
                    f.seek(index * disk.block_size)
                    f.write(read_entry(entry, block_length(disk.size, index, disk.block_size), read))
    return target


def guest_image(sim, disk_id: str, target: Path) -> Path:
    """The guest's view of a simulator disk now, as a raw file."""
    path, fmt = sim.disk_image(disk_id)
    subprocess.run(["qemu-img", "convert", "-U", "-f", "qcow2" if fmt in ("cow", "qcow2") else "raw",
                    "-O", "raw", str(path), str(target)], check=True, capture_output=True)
    return target


def images_equal(a: Path, b: Path) -> bool:
    result = subprocess.run(["qemu-img", "compare", "-f", "raw", "-F", "raw", str(a), str(b)],
                            capture_output=True, text=True)
    return result.returncode == 0

