"""A worker's runner: its queue's django-q2 cluster in a child process, and heartbeats.

``manage.py runworker NAME`` runs this on whatever machine hosts the worker
(the worker VM with the cloud-init launcher, the backup server with the local
one). The heartbeat lives in the parent process so that it stops when the
runner dies: a killed runner falls silent and the scheduled check marks the
worker unreachable.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from importlib import metadata

from django.conf import settings
from django.db import close_old_connections

from vbrsite.pids import pid_alive
from workers import services
from workers.choices import EMBEDDED_QUEUE
from workers.models import Worker

log = logging.getLogger(__name__)

PING_TIMEOUT = 120.0  # seconds a starting qcluster may take to run its first task

# What the runners' tasks import on first use. django-q2 forks its task processes
# from the qcluster process and hands each task to the next one in turn: left to
# import lazily, each of the first sessions (and disk tasks) on a fresh runner paid
# 40 to 80 ms of imports on its critical path, once per process.
TASK_MODULES = (
    "jobs.tasks", "jobs.driver.backup_session", "jobs.driver.vm_backup", "jobs.driver.retention",
    "jobs.restore.driver", "jobs.reconcile", "jobs.notifications", "workers.dispatch",
    "workers.tasks", "workers.runtime.backup", "workers.runtime.restore", "ovirt_imageio.client",
)


def running_qcluster() -> bool:
    """Whether this process is a qcluster (``manage.py qcluster``), about to fork its task processes."""
    return sys.argv[1:2] == ["qcluster"]


def preload_task_modules() -> None:
    """Import what the tasks import, before django-q2 forks: every task process has it then."""
    import importlib

    for name in TASK_MODULES:
        importlib.import_module(name)


def software_version() -> str:
    """The installed project's version (what redeploy compares)."""
    try:
        return metadata.version("ovirt-backup-server")
    except metadata.PackageNotFoundError:
        return "unknown"


def qcluster_command() -> list[str]:
    return [sys.executable, str(settings.BASE_DIR / "manage.py"), "qcluster"]


def _anchor_alive() -> bool:
    """False once the process named by VBR_RUNNER_ANCHOR_PID has ended.

    The local launcher starts runners in a session of their own (a signal to the
    web server must not reach them), so a Ctrl-C of `make run` would leave them
    running: they watch the process that launched them instead.
    """
    anchor = os.environ.get("VBR_RUNNER_ANCHOR_PID", "")
    if not anchor.isdigit():
        return True
    return pid_alive(int(anchor))


def ping_queue(queue: str, timeout: float, keep_waiting=lambda: True) -> bool | None:
    """Send a ping task to ``queue`` and wait for a runner to run it.

    True once one did; None when ``timeout`` passed first; False as soon as
    ``keep_waiting()`` says to give up.
    """
    from django_q.tasks import async_task, result

    ping = async_task("workers.tasks.runner_ping", cluster=queue, task_name=f"ping-{queue}-{os.getpid()}")
    deadline = time.monotonic() + timeout
    while keep_waiting():
        if result(ping, wait=500) is not None:
            return True
        if time.monotonic() > deadline:
            return None
    return False


class Runner:
    """Run the queue's qcluster until it ends, is told to stop, or the worker is stopped."""

    def __init__(self, worker: Worker | None):
        self.worker = worker
        self.queue = worker.queue if worker is not None else EMBEDDED_QUEUE
        self.stop = threading.Event()
        self.child: subprocess.Popen | None = None

    def run(self) -> int:
        for signo in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signo, self._on_signal)
        env = {**os.environ, "Q_CLUSTER_NAME": self.queue}
        if self.worker is not None:
            # One django-q2 process per task the worker may run at once.
            env["VBR_RUNNER_WORKERS"] = str(self.worker.max_tasks)
        self.child = subprocess.Popen(qcluster_command(), env=env)
        log.info("runner for queue %s started (qcluster pid %s)", self.queue, self.child.pid)
        try:
            if self.worker is not None and not self._wait_consuming():
                return self.child.returncode or 1
            self._beat_until_done()
        finally:
            self._stop_child()
        return self.child.returncode or 0

    def _wait_consuming(self) -> bool:
        """Wait until the qcluster runs a task of the queue, so the first heartbeat means ready.

        (Its processes take a few seconds to start; a worker declared ready
        before would look slow to the first session.) False when the child
        died or the runner was told to stop meanwhile.
        """
        close_old_connections()
        answered = ping_queue(self.queue, PING_TIMEOUT,
                              keep_waiting=lambda: not self.stop.is_set() and self.child.poll() is None)
        if answered is None:
            # Results may not be kept (Q_CLUSTER save_limit); the child is alive: go on.
            log.warning("no answer to the runner's ping within %s s; sending heartbeats anyway",
                        PING_TIMEOUT)
        return answered is not False

    def _on_signal(self, signo, frame) -> None:
        self.stop.set()

    def _beat_until_done(self) -> None:
        period = max(1, settings.VBR_WORKER_HEARTBEAT_SECONDS)
        while not self.stop.is_set() and self.child.poll() is None:
            if not _anchor_alive():
                log.info("the backup server that launched this runner is gone: stopping")
                return
            if self.worker is not None and not self._beat():
                log.info("worker %s is no longer meant to run: stopping its runner", self.worker)
                return
            self.stop.wait(period)

    def _beat(self) -> bool:
        close_old_connections()
        try:
            return services.heartbeat(self.worker, version=software_version(),
                                       runner_host=socket.gethostname())
        except Exception as exc:  # noqa: BLE001 - a database blip must not kill the runner
            log.warning("heartbeat of worker %s failed: %s", self.worker, exc)
            return True

    def _stop_child(self) -> None:
        if self.child.poll() is None:
            self.child.send_signal(signal.SIGTERM)
            try:
                self.child.wait(30)
            except subprocess.TimeoutExpired:
                self.child.kill()
                self.child.wait()
