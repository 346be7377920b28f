"""Tasks reach the control runner and the worker runners by queue name."""

import os

import pytest
from django_q.tasks import async_task, result

from tests.support.processes import manage_py, running


@pytest.mark.django_db
def test_a_task_runs_in_sync_mode_for_unit_tests(settings):
    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "sync": True}
    task_id = async_task("vbrsite.tasks.runner_identity", sync=True)
    assert result(task_id)["pid"] == os.getpid()


@pytest.mark.integration
def test_control_and_worker_runners_take_their_own_tasks(live_env, output_dir):
    worker_env = {**live_env, "Q_CLUSTER_NAME": "worker-test"}
    with running(manage_py("qcluster"), live_env, output_dir / "control.log", graceful=False), \
            running(manage_py("qcluster"), worker_env, output_dir / "worker.log", graceful=False):
        control_task = async_task("vbrsite.tasks.runner_identity")
        worker_task = async_task("vbrsite.tasks.runner_identity", cluster="worker-test")
        control = result(control_task, wait=60_000)
        worker = result(worker_task, wait=60_000)
    assert control is not None, (output_dir / "control.log").read_text()
    assert worker is not None, (output_dir / "worker.log").read_text()
    assert control["cluster"] == "control"
    assert worker["cluster"] == "worker-test"
    assert control["pid"] != os.getpid() and worker["pid"] != control["pid"]
