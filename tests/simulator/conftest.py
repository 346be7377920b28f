"""A simulator per test (seed small, short delays), checked to leave no process behind."""

import pytest

from simulator.testing import leftover_processes, running_simulator


@pytest.fixture
def sim(tmp_path):
    """The running simulator; afterwards no imageio or qemu-nbd of it may be left."""
    state_dir = tmp_path / "sim"
    with running_simulator(state_dir, seed="small", delays=0.1) as handle:
        yield handle
    assert leftover_processes(state_dir) == []


@pytest.fixture
def connection(sim):
    """An ovirtsdk4 connection to the simulator."""
    conn = sim.connection()
    yield conn
    conn.close()
