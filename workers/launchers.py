"""How a worker's runner comes alive once its VM is up (setting VBR_WORKER_LAUNCHER).

``cloud-init``: the worker VM's first boot installs the project and starts
``manage.py runworker NAME`` itself (see ``cloud_init_user_data``); the backup
server only waits for the first heartbeat.

``local``: the backup server starts ``manage.py runworker NAME`` as a local
process (the embedded stack and the tests, where the simulator's VMs run
nothing). Its process id is kept on the worker so that stop and remove end it.
"""

from __future__ import annotations

import json
import logging
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

from django.conf import settings
from django.db import connection

from workers.choices import Launcher
from workers.models import Worker

log = logging.getLogger(__name__)

# Runners this process started: reaped here so that none lingers as a zombie.
_children: dict[int, subprocess.Popen] = {}


def launcher() -> str:
    value = settings.VBR_WORKER_LAUNCHER
    if value not in Launcher.values:
        raise ValueError(f"VBR_WORKER_LAUNCHER={value!r}: use {' or '.join(Launcher.values)}")
    return value


def database_url() -> str:
    """The URL of the database this process uses (a runner must use the same one)."""
    config = connection.settings_dict
    if config["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{config['NAME']}"
    user = config["USER"] or "postgres"
    auth = f"{user}:{config['PASSWORD']}" if config["PASSWORD"] else user
    return f"postgres://{auth}@{config['HOST'] or '127.0.0.1'}:{config['PORT'] or 5432}/{config['NAME']}"


def runner_environment() -> dict[str, str]:
    """The environment of a local runner: the same database, secrets key and data folder."""
    env = {**os.environ, "DATABASE_URL": database_url(), "VBR_SECRET_KEY": settings.SECRET_KEY,
           "VBR_DATA_DIR": str(settings.DATA_DIR), "DJANGO_SETTINGS_MODULE": "vbrsite.settings"}
    env.pop("Q_CLUSTER_NAME", None)
    # The runner stops when the process that owns this one (gunicorn's master, the
    # runner cluster's sentinel) ends, as it does on Ctrl-C of `make run`.
    env["VBR_RUNNER_ANCHOR_PID"] = str(os.getppid())
    return env


def start_local_runner(worker: Worker) -> int:
    """Start ``manage.py runworker NAME`` in its own process group; returns its pid."""
    stop_local_runner(worker)
    logs = Path(settings.DATA_DIR) / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    with open(logs / f"worker-{worker.name}.log", "ab") as log_file:
        process = subprocess.Popen(
            [sys.executable, str(settings.BASE_DIR / "manage.py"), "runworker", worker.name],
            env=runner_environment(), stdout=log_file, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True, cwd=settings.BASE_DIR,
        )
    _children[process.pid] = process
    Worker.objects.filter(pk=worker.pk).update(runner_pid=process.pid)
    worker.runner_pid = process.pid
    log.info("started the runner of worker %s (pid %s)", worker.name, process.pid)
    return process.pid


def _is_our_runner(pid: int, name: str) -> bool:
    """True when pid is a live `runworker NAME` process (pids get reused)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return b"runworker" in cmdline and name.encode() in cmdline


def stop_local_runner(worker: Worker, timeout: float = 30.0) -> None:
    """End the worker's local runner (and its qcluster) if one runs."""
    pid = worker.runner_pid
    if not pid:
        return
    if _is_our_runner(pid, worker.name):
        # The runner alone: it stops its qcluster, which stops its processes in order
        # (a SIGTERM to every process of the group at once makes qcluster hang).
        _signal(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while _is_our_runner(pid, worker.name) and time.monotonic() < deadline:
            _reap(pid)
            time.sleep(0.2)
        _signal_group(pid, signal.SIGKILL)
    _reap(pid, wait=True)
    Worker.objects.filter(pk=worker.pk, runner_pid=pid).update(runner_pid=None)
    worker.runner_pid = None


def _signal(pid: int, signo: int) -> None:
    try:
        os.kill(pid, signo)
    except (ProcessLookupError, PermissionError):
        pass


def _signal_group(pid: int, signo: int) -> None:
    try:
        os.killpg(pid, signo)
    except (ProcessLookupError, PermissionError):
        pass


def _reap(pid: int, wait: bool = False) -> None:
    process = _children.get(pid)
    if process is None:
        return
    try:
        process.wait(5 if wait else 0.01)
    except subprocess.TimeoutExpired:
        return
    _children.pop(pid, None)


def cloud_init_user_data(worker: Worker) -> str:
    """The cloud-init user data that turns a fresh Linux VM into this worker's runner.

    It installs the project with pip into /opt/vbr-worker, writes the settings
    the runner needs (the backup server's database and broker, the secrets
    key) into a root-only environment file, and starts ``runworker NAME`` as a
    systemd service that restarts on failure.
    """
    env = {
        "DATABASE_URL": settings.VBR_WORKER_DATABASE_URL or database_url(),
        "VBR_SECRET_KEY": settings.SECRET_KEY,
        "VBR_DATA_DIR": "/var/lib/vbr-worker",
        "DJANGO_SETTINGS_MODULE": "vbrsite.settings",
    }
    redis = settings.VBR_WORKER_REDIS_URL or settings.REDIS_URL
    if redis:
        env["VBR_REDIS_URL"] = redis
    if settings.SECRETS_KEY:
        env["VBR_SECRETS_KEY"] = settings.SECRETS_KEY
    env_file = "".join(f"{k}={shlex.quote(v)}\n" for k, v in env.items())
    unit = (
        f"[Unit]\nDescription=oVirt backup worker {worker.name}\nAfter=network-online.target\n"
        "Wants=network-online.target\n\n[Service]\nEnvironmentFile=/etc/vbr-worker.env\n"
        f"ExecStart=/opt/vbr-worker/bin/vbr-manage runworker {worker.name}\nRestart=on-failure\n"
        # A stop signals the runner alone, which stops its qcluster in order: a SIGTERM to
        # every process of the service at once (systemd's default) leaves qcluster hanging.
        "RestartSec=5\nKillMode=mixed\nTimeoutStopSec=60\n\n[Install]\nWantedBy=multi-user.target\n"
    )
    manage = ("#!/bin/sh\nexec /opt/vbr-worker/bin/python -m django \"$@\"\n")
    document = {
        "package_update": True,
        "packages": ["python3-venv", "python3-pip", "qemu-utils"],
        "write_files": [
            {"path": "/etc/vbr-worker.env", "permissions": "0600", "content": env_file},
            {"path": "/etc/systemd/system/vbr-worker.service", "content": unit},
            {"path": "/opt/vbr-worker/bin/vbr-manage", "permissions": "0755", "content": manage},
        ],
        "runcmd": [
            ["python3", "-m", "venv", "/opt/vbr-worker"],
            ["/opt/vbr-worker/bin/pip", "install", "--upgrade", worker_package()],
            ["mkdir", "-p", "/var/lib/vbr-worker"],
            ["systemctl", "daemon-reload"],
            ["systemctl", "enable", "--now", "vbr-worker.service"],
        ],
    }
    # JSON is valid YAML; cloud-init wants the #cloud-config header.
    return "#cloud-config\n" + json.dumps(document, indent=2) + "\n"


def worker_package() -> str:
    """What a worker VM installs with pip: VBR_WORKER_PACKAGE, else this server's own release.
    Workers must run the server's version (an older worker can't read newer restore points, a
    newer one writes what this server can't read)."""
    from workers.runner import software_version

    if settings.VBR_WORKER_PACKAGE:
        return settings.VBR_WORKER_PACKAGE
    version = software_version()
    return "ovirt-backup-server" if version == "unknown" else f"ovirt-backup-server=={version}"
