"""The first start of the embedded stack: default repository, schedules, and the demo.

``prepare_installation`` runs in `manage.py firstrun`, before any process
starts: what every installation needs (the default repository the data mover
serves, the periodic schedules). ``set_up_demo`` runs in `manage.py
demo_setup`, inside the control runner's Procfile line, once the simulator is
up: the simulator registered and synced as the manager "demo", and an
unscheduled demo job. The simulator's password is the one it keeps in its
state and announces in ``DIR/server.json`` (mode 0600) while it runs.
"""

from __future__ import annotations

import importlib
import json
import logging
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

from vbrsite.pids import pid_alive

log = logging.getLogger(__name__)

DEMO_JOB_NAME = "Demo nightly"
DEMO_JOB_TAG = "nightly"
SCHEDULE_MODULES = ("inventory.schedules", "workers.schedules", "jobs.schedules")


def simulator_dir() -> Path:
    """Where `make run` keeps the simulator's state (the Procfile's --state)."""
    return settings.DATA_DIR / "simulator"


def demo_wanted() -> tuple[bool, str]:
    """Whether the demo should be set up, and why not when it shouldn't."""
    if not settings.VBR_DEMO:
        return False, "VBR_DEMO is off"
    from inventory.models import Manager
    from inventory.setup import DEMO_MANAGER_NAME

    real = Manager.objects.exclude(name=DEMO_MANAGER_NAME).values_list("name", flat=True).first()
    if real is not None:
        return False, f"the manager {real!r} is registered"
    return True, ""


def prepare_installation(say: Callable[[str], None]) -> None:
    """The default repository and every app's periodic schedules, idempotently."""
    from repositories.setup import ensure_default_repository

    repository = ensure_default_repository()
    say(f"Repository {repository.name}: {repository.path} (data mover {repository.datamover_url}).")
    for module_name in SCHEDULE_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            continue
        module.ensure_schedules()
    say("Periodic schedules are in place.")


@dataclass
class SimulatorInfo:
    """Where the running simulator listens and how to log in (from its server.json)."""

    url: str
    ca_file: str
    username: str
    password: str


def read_simulator(state_dir: Path) -> SimulatorInfo | None:
    """The simulator's announcement, if it runs now and answers (a stale file is ignored)."""
    try:
        info = json.loads((state_dir / "server.json").read_text())
    except (OSError, ValueError):
        return None
    if not pid_alive(int(info.get("pid", 0) or 0)):
        return None
    try:
        with socket.create_connection((info["host"], int(info["port"])), timeout=2):
            pass
    except OSError:
        return None
    return SimulatorInfo(url=info["url"], ca_file=info["ca_file"],
                         username=info.get("username", "admin@internal"), password=info["password"])


def wait_for_simulator(state_dir: Path, timeout: float) -> SimulatorInfo | None:
    """Wait up to ``timeout`` seconds for the simulator to start answering."""
    deadline = time.monotonic() + timeout
    while True:
        info = read_simulator(state_dir)
        if info is not None or time.monotonic() >= deadline:
            return info
        time.sleep(0.5)


def ensure_demo_job():
    """The unscheduled job "Demo nightly" (VMs tagged nightly) to the default repository."""
    from jobs.choices import ScheduleKind, VmSelection
    from jobs.models import BackupJob
    from repositories.setup import ensure_default_repository

    job, created = BackupJob.objects.get_or_create(name=DEMO_JOB_NAME, defaults={
        "description": "Made by the demo setup: run it from the Jobs page.",
        "selection": VmSelection.TAG, "tag": DEMO_JOB_TAG,
        "repository": ensure_default_repository(), "schedule_kind": ScheduleKind.MANUAL,
        "retain": 7})
    return job, created


def set_up_demo(say: Callable[[str], None], wait: float = 0) -> bool:
    """Register and sync the simulator as the manager "demo" and add the demo job.

    Returns False (having said why) when the demo is off or the simulator is
    not running; never raises for that, so the runner it precedes still starts.
    """
    wanted, why_not = demo_wanted()
    if not wanted:
        say(f"No demo: {why_not}.")
        return False
    info = wait_for_simulator(simulator_dir(), wait)
    if info is None:
        say(f"No demo: no simulator answers for {simulator_dir()} "
            f"(start it with: python -m simulator serve --state {simulator_dir()} --seed demo).")
        return False
    from inventory.setup import ensure_demo_manager

    manager = ensure_demo_manager(info.url, info.ca_file, info.password, username=info.username)
    if manager.last_error:
        say(f"The demo manager was registered but its sync failed: {manager.last_error}")
        return False
    vm_count = manager.vm_set.filter(removed=False).count()
    say(f"Demo manager {manager.name}: {info.url}, {vm_count} VMs synced.")
    try:
        job, created = ensure_demo_job()
    except ImportError:
        return True
    say(f"Demo job {job.name!r} {'added' if created else 'is there'} (run it from the Jobs page).")
    return True
