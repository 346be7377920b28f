"""A runner started by the local launcher ends with the backup server that launched it."""

import subprocess
import time

from tests.support.processes import manage_py, running


def test_a_runner_stops_when_the_process_that_launched_it_is_gone(live_env, output_dir):
    anchor = subprocess.Popen(["sleep", "600"])
    env = {**live_env, "VBR_RUNNER_ANCHOR_PID": str(anchor.pid), "VBR_WORKER_HEARTBEAT_SECONDS": "1"}
    with running(manage_py("runworker", "embedded"), env, output_dir / "runner.log") as runner:
        time.sleep(3)
        assert runner.poll() is None, (output_dir / "runner.log").read_text()
        anchor.kill()
        anchor.wait()
        deadline = time.monotonic() + 60
        while runner.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert runner.poll() is not None, "the runner outlived the process that launched it"
    assert "launched this runner is gone" in (output_dir / "runner.log").read_text()
