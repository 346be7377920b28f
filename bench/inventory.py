"""Inventory figures: sync of a simulator seeded with 2000 VMs, seconds and database queries.

The sync runs in a child process on a database of its own (a temporary SQLite
file, and a temporary PostgreSQL database when DATABASE_URL points at one), so
the bench never touches the installation's data. Figures per database: the
first sync (everything created), then a resync with nothing changed; each
split into reading the engine (one list call per collection) and storing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

VMS = 2000
ROOT = Path(__file__).resolve().parents[1]


def run(report) -> None:
    """Start the simulator with --seed inventory:2000 and time syncs on each database."""
    from simulator.testing import running_simulator

    with tempfile.TemporaryDirectory(prefix="vbr-bench-inventory-") as tmp, \
            running_simulator(Path(tmp) / "sim", seed=f"inventory:{VMS}") as sim:
        for label, database_url in _databases(Path(tmp)):
            figures = _child(sim, database_url, Path(tmp))
            for run_name in ("first sync", "resync, no change"):
                f = figures[run_name]
                report.row(f"inventory {run_name}, {VMS} VMs ({label})", seconds=f["seconds"],
                           engine_seconds=f["engine_seconds"], store_seconds=f["store_seconds"],
                           queries=f["queries"], vms=f["vms"], disks=f["disks"])


def _databases(tmp: Path):
    yield "SQLite", f"sqlite:///{tmp / 'bench.sqlite3'}"
    url = os.environ.get("DATABASE_URL", "")
    if url.startswith("postgres"):
        yield "PostgreSQL", url


def _child(sim, database_url: str, tmp: Path) -> dict:
    env = {**os.environ, "DATABASE_URL": database_url, "VBR_DATA_DIR": str(tmp / "data"),
           "DJANGO_SETTINGS_MODULE": "vbrsite.settings", "VBR_SECRET_KEY": "bench-only",
           "BENCH_SIM": json.dumps({"url": sim.url, "ca_file": str(sim.ca_file),
                                    "username": sim.username, "password": sim.password})}
    done = subprocess.run([sys.executable, "-m", "bench.inventory"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        raise RuntimeError(f"inventory bench child failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _measure(manager) -> dict:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from inventory.models import VM, Disk
    from inventory.sync import store_inventory
    from plugin import engine as ovirt

    started = time.perf_counter()
    with ovirt.connect(manager.credentials(), timeout=120) as conn:
        inventory = ovirt.read_inventory(conn)
    read = time.perf_counter()
    with CaptureQueriesContext(connection) as queries:
        store_inventory(manager, inventory)
    stored = time.perf_counter()
    return {"seconds": stored - started, "engine_seconds": read - started,
            "store_seconds": stored - read, "queries": len(queries.captured_queries),
            "vms": VM.objects.filter(manager=manager, removed=False).count(),
            "disks": Disk.objects.filter(manager=manager, removed=False).count()}


def _child_main() -> None:
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    if connection.vendor == "postgresql":
        _use_temporary_postgres_database()
    call_command("migrate", verbosity=0)
    from inventory.models import Manager

    sim = json.loads(os.environ["BENCH_SIM"])
    manager = Manager.objects.create(name="bench", url=sim["url"], username=sim["username"],
                                     password=sim["password"],
                                     ca_certificate=Path(sim["ca_file"]).read_text())
    try:
        figures = {"first sync": _measure(manager), "resync, no change": _measure(manager)}
    finally:
        Manager.objects.filter(pk=manager.pk).delete()
        _drop_temporary_postgres_database()
    print(json.dumps(figures))


_TEMP_DB: dict = {}


def _use_temporary_postgres_database() -> None:
    # Switch the default connection to a fresh database so the bench leaves no rows behind.
    from django.db import connection, connections

    name = f"vbr_bench_inventory_{os.getpid()}"
    connection.ensure_connection()
    connection.connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute(f'CREATE DATABASE "{name}"')
    _TEMP_DB["name"], _TEMP_DB["original"] = name, connection.settings_dict["NAME"]
    connection.close()
    connections["default"].settings_dict["NAME"] = name


def _drop_temporary_postgres_database() -> None:
    if not _TEMP_DB:
        return
    from django.db import connection

    connection.close()
    connection.settings_dict["NAME"] = _TEMP_DB["original"]
    connection.ensure_connection()
    connection.connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{_TEMP_DB["name"]}"')
    connection.close()


if __name__ == "__main__":
    _child_main()
