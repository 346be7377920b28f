"""Fixtures of the worker tests: a real imageio data plane (the simulator's) and a real data mover."""

import subprocess
import sys
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from repositories.datamover.client import DataMoverClient
from repositories.store import BLOCK_SIZE, ChunkStore
from simulator.dataplane.plane import DataPlane
from simulator.pki import ensure_pki
from tests.support.processes import free_port, running, wait_for_port

MIB = 1024 * 1024


@dataclass
class Plane:
    """The simulator's data plane with helpers to make disks and transfers."""

    dp: DataPlane
    home: Path
    ca_pem: str

    def disk(self, name: str, size: int, *, seed: int | None = None, fmt: str = "cow",
             allocated: float = 0.5) -> Path:
        path = self.home / "volumes" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if seed is None:
            self.dp.create_volume(path, fmt, size)
        else:
            self.dp.seed_volume(path, fmt, size, seed, allocated)
        return path

    def transfer(self, volume: Path, direction: str, *, fmt: str = "cow", size: int,
                 dirty_bitmap: str | None = None) -> tuple[str, str]:
        """Open a transfer; returns (transfer id, transfer URL)."""
        transfer_id = str(uuid.uuid4())
        endpoint = self.dp.open_transfer(transfer_id, volume, fmt, direction, "raw", size,
                                         timeout=300, inactivity_timeout=60,
                                         dirty_bitmap=dirty_bitmap)
        return transfer_id, endpoint.transfer_url


@pytest.fixture
def plane(tmp_path) -> Plane:
    state = tmp_path / "sim"
    state.mkdir()
    pki = ensure_pki(state, "127.0.0.1")
    dp = DataPlane(state, tls=(pki.key_file, pki.cert_file, pki.ca_file))
    dp.start()
    try:
        yield Plane(dp, state, pki.ca_file.read_text())
    finally:
        dp.stop()


@dataclass
class Mover:
    url: str
    token: str
    path: Path

    def client(self, **options) -> DataMoverClient:
        return DataMoverClient(self.url, self.token, **options)

    def store(self, key=None) -> ChunkStore:
        return ChunkStore.open(self.path, key=key)


@contextmanager
def running_mover(home: Path, log: Path, key=None, port: int | None = None):
    """The standalone data mover (gunicorn) over a repository (made when new), encrypted under ``key``."""
    home.mkdir(parents=True, exist_ok=True)
    token_file = home / "mover.token"
    token_file.write_text("worker-test-token")
    port = port or free_port()
    path = home / "repository"
    ChunkStore.create(path, key=key)
    args = [sys.executable, "-m", "repositories.datamover", "--path", str(path), "--token-file",
            str(token_file), "--bind", f"127.0.0.1:{port}", "--workers", "1", "--threads", "4"]
    with running(args, log_path=log) as process:
        wait_for_port(port, process=process)
        yield Mover(f"http://127.0.0.1:{port}", "worker-test-token", path)


@pytest.fixture
def mover(tmp_path, output_dir) -> Mover:
    """A data mover over a new unencrypted repository."""
    with running_mover(tmp_path, output_dir / "datamover.log") as mover:
        yield mover


def raw_image(volume: Path, fmt: str, target: Path) -> bytes:
    """The guest-visible bytes of a volume, through qemu-img."""
    subprocess.run(["qemu-img", "convert", "-f", "qcow2" if fmt == "cow" else "raw", "-O", "raw",
                    str(volume), str(target)], check=True)
    return target.read_bytes()


def blocks_of(data: bytes) -> list[bytes]:
    return [data[i:i + BLOCK_SIZE] for i in range(0, len(data), BLOCK_SIZE)]


# Integration: the simulator, a synced manager, a repository, workers with real runners


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    """One simulator (seed small) for a test module: starting it is the slow part."""
    from simulator.testing import running_simulator

    with running_simulator(tmp_path_factory.mktemp("sim") / "state", seed="small",
                           delays=0.1) as handle:
        yield handle


@pytest.fixture
def manager(sim, transactional_db):
    from inventory.models import Manager
    from inventory.sync import sync_manager

    manager = Manager.objects.create(name="sim", url=sim.url, username=sim.username,
                                     password=sim.password, ca_certificate=sim.ca_file.read_text())
    sync_manager(manager)
    return manager


@pytest.fixture
def repository(mover, transactional_db):
    from repositories.models import Repository

    return Repository.objects.create(name="repo", path=str(mover.path), datamover_url=mover.url,
                                     token=mover.token)


@pytest.fixture
def runner_settings(settings, monkeypatch, output_dir):
    """Runners beat every second and are lost after 6 s; their logs go to output_dir."""
    monkeypatch.setenv("VBR_WORKER_HEARTBEAT_SECONDS", "1")
    settings.VBR_WORKER_HEARTBEAT_SECONDS = 1
    settings.VBR_WORKER_HEARTBEAT_TIMEOUT = 6
    settings.VBR_WORKER_LAUNCHER = "local"
    settings.DATA_DIR = output_dir
    return settings


@pytest.fixture
def new_worker(manager, runner_settings):
    """Make Worker rows in the manager's cluster; their local runners are stopped afterwards."""
    from inventory.models import Cluster
    from workers import launchers
    from workers.models import Worker

    made = []

    def make(name: str, **fields):
        cluster = fields.pop("cluster", None) or Cluster.objects.get(manager=manager, name="Default")
        worker = Worker.objects.create(name=name, manager=manager, cluster=cluster,
                                       **{"cpus": 1, "memory": 1024, "max_tasks": 2, **fields})
        made.append(worker)
        return worker

    yield make
    for worker in made:
        try:
            worker.refresh_from_db()
        except Worker.DoesNotExist:
            pass  # removed by the test; its runner pid is still known here
        launchers.stop_local_runner(worker)


# Database-only fixtures: an inventory stored without an engine


@pytest.fixture
def inventory_manager(db):
    """A manager whose inventory (cluster Cluster1, host1, data1, 3 VMs) is stored without an engine."""
    from inventory.models import Manager
    from inventory.sync import store_inventory
    from tests.inventory.factories import inventory

    manager = Manager.objects.create(name="engine1", url="https://engine1/ovirt-engine/api")
    store_inventory(manager, inventory(3))
    return manager


@pytest.fixture
def remote_cluster(inventory_manager):
    """A second data center in the stored inventory, Remote: its cluster Remote and storage domain remote1."""
    from inventory.models import Cluster, DataCenter, StorageDomain

    remote = DataCenter.objects.create(manager=inventory_manager, engine_id="dc-2", name="Remote")
    StorageDomain.objects.create(manager=inventory_manager, engine_id="sd-2", name="remote1", type="data",
                                 data_center=remote)
    return Cluster.objects.create(manager=inventory_manager, engine_id="cl-2", name="Remote", data_center=remote)


@pytest.fixture
def make_worker(inventory_manager):
    """Worker rows in the stored inventory's cluster (no VM, no runner)."""
    from django.utils import timezone

    from inventory.models import Cluster
    from workers.models import Worker

    def make(name: str, state: str = "ready", beat: bool = True, **fields):
        cluster = fields.pop("cluster", None) or Cluster.objects.get(manager=inventory_manager,
                                                                     engine_id="cl-1")
        return Worker.objects.create(name=name, manager=inventory_manager, cluster=cluster,
                                     state=state, last_heartbeat=timezone.now() if beat else None,
                                     **fields)

    return make

