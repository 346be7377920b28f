"""Fixtures of the restore tests: a repository served by a real data mover process."""

import sys

import pytest

from repositories.services import create_repository
from tests.restore.stack import Stack
from tests.support.processes import free_port, manage_py, running, wait_for_port


@pytest.fixture(params=["plain", "encrypted"])
def repository(request, db, tmp_path, output_dir):
    """A local repository record with its store (plain or encrypted), served by the standalone data mover."""
    port = free_port()
    passphrase = "restore-test-passphrase" if request.param == "encrypted" else None
    record = create_repository("restore-tests", str(tmp_path / "repository"),
                               url=f"http://127.0.0.1:{port}", passphrase=passphrase)
    token_file = tmp_path / "datamover.token"
    token_file.write_text(record.token)
    args = [sys.executable, "-m", "repositories.datamover", "--path", record.path,
            "--token-file", str(token_file), "--bind", f"127.0.0.1:{port}",
            "--workers", "1", "--threads", "4"]
    with running(args, log_path=output_dir / "datamover.log") as process:
        wait_for_port(port, process=process)
        yield record


# End-to-end: the simulator, a synced manager, a data mover, and the runners.

@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    """One simulator (seed small) per test module: starting it is the slow part."""
    from simulator.testing import running_simulator

    with running_simulator(tmp_path_factory.mktemp("sim") / "state", seed="small", delays=0.1) as handle:
        yield handle


@pytest.fixture(scope="module")
def shared_datamover(tmp_path_factory):
    """A standalone data mover over a fresh repository, per test module: (url, token, path)."""
    home = tmp_path_factory.mktemp("datamover")
    token_file = home / "token"
    token_file.write_text("restore-test-token")
    port = free_port()
    args = [sys.executable, "-m", "repositories.datamover", "--path", str(home / "repository"),
            "--token-file", str(token_file), "--bind", f"127.0.0.1:{port}", "--init",
            "--workers", "1", "--threads", "4"]
    with running(args, log_path=home / "datamover.log") as process:
        wait_for_port(port, process=process)
        yield f"http://127.0.0.1:{port}", "restore-test-token", home / "repository"


@pytest.fixture
def stack(sim, shared_datamover, live_env, output_dir):
    """Manager (synced), repository record, control runner and embedded worker runner."""
    from inventory.models import Manager
    from inventory.sync import sync_manager
    from repositories.models import Repository

    manager = Manager.objects.create(name="sim", url=sim.url, username=sim.username,
                                     password=sim.password, ca_certificate=sim.ca_file.read_text())
    sync_manager(manager)
    url, token, path = shared_datamover
    repository = Repository.objects.create(name="repo", path=str(path), datamover_url=url, token=token)
    env = {**live_env, "VBR_RUNNER_WORKERS": "2"}
    with running(manage_py("qcluster"), env, output_dir / "control.log", graceful=False), \
            running(manage_py("qcluster"), {**env, "Q_CLUSTER_NAME": "embedded"},
                    output_dir / "worker.log", graceful=False):
        yield Stack(sim, manager, repository, output_dir)
