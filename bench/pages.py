"""Page figures: how long each main page takes with 2,000 VMs in the inventory (target < 300 ms).

A child process works on a database of its own (a temporary SQLite file, and
a temporary PostgreSQL database when DATABASE_URL points at one), fills it
directly with an installation's worth of rows (one manager, 2,000 VMs with a
disk each, a repository, jobs, 300 sessions, a restore point per VM on half of
them, reconcile actions, workers), then requests each page through Django's
test client as a logged-in administrator: one warm-up, then the median of
several requests, and the number of queries.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

VMS = 2000
SESSIONS = 300
REPEATS = 5
TARGET_MS = 300
ROOT = Path(__file__).resolve().parents[1]
PAGES = (
    ("dashboard", "dashboard", ()),
    ("inventory", "inventory:index", ()),
    ("jobs", "jobs:index", ()),
    ("sessions", "jobs:sessions", ()),
    ("repositories", "repositories:index", ()),
    ("workers", "workers:index", ()),
    ("restore", "jobs:restore", ()),
)


def run(report) -> None:
    """Time each main page on SQLite (and PostgreSQL when DATABASE_URL is one)."""
    with tempfile.TemporaryDirectory(prefix="vbr-bench-pages-") as tmp:
        for label, database_url in _databases(Path(tmp)):
            figures = _child(database_url, Path(tmp))
            for name, f in figures.items():
                report.row(f"page {name}, {VMS} VMs ({label})", ms=f["ms"], queries=f["queries"],
                           status=f["status"], target=f"< {TARGET_MS} ms",
                           ok="yes" if f["ms"] < TARGET_MS and f["status"] == 200 else "NO")


def _databases(tmp: Path):
    yield "SQLite", f"sqlite:///{tmp / 'pages.sqlite3'}"
    url = os.environ.get("DATABASE_URL", "")
    if url.startswith("postgres"):
        yield "PostgreSQL", url


def _child(database_url: str, tmp: Path) -> dict:
    env = {**os.environ, "DATABASE_URL": database_url, "VBR_DATA_DIR": str(tmp / "data"),
           "DJANGO_SETTINGS_MODULE": "vbrsite.settings", "VBR_SECRET_KEY": "bench-only"}
    done = subprocess.run([sys.executable, "-m", "bench.pages"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        raise RuntimeError(f"pages bench child failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _fill() -> None:
    """An installation's worth of rows, written in bulk."""
    from django.utils import timezone

    from inventory.models import VM, Cluster, DataCenter, Disk, Host, Manager, StorageDomain

    manager = Manager.objects.create(name="bench", url="https://engine.bench/ovirt-engine/api",
                                     state="connected", last_sync=timezone.now())
    dc = DataCenter.objects.create(manager=manager, engine_id="dc", name="Default")
    clusters = [Cluster.objects.create(manager=manager, engine_id=f"c{i}", name=f"Cluster{i}",
                                       data_center=dc) for i in range(4)]
    hosts = [Host.objects.create(manager=manager, engine_id=f"h{i}", name=f"host{i}",
                                 cluster=clusters[i % 4]) for i in range(8)]
    sd = StorageDomain.objects.create(manager=manager, engine_id="sd", name="data1", data_center=dc,
                                      type="data", free=10 * 2**40, used=2**40)
    VM.objects.bulk_create(
        VM(manager=manager, engine_id=f"vm-{i}", name=f"vm-{i:04d}", status="up" if i % 3 else "down",
           cluster=clusters[i % 4], host=hosts[i % 8], memory=4 * 2**30, cpus=2,
           tags=["nightly"] if i % 10 == 0 else []) for i in range(VMS))
    vms = list(VM.objects.order_by("pk"))
    Disk.objects.bulk_create(
        Disk(manager=manager, engine_id=f"disk-{vm.pk}", name=f"{vm.name}_os", vm=vm, format="cow",
             provisioned_size=20 * 2**30, actual_size=4 * 2**30, storage_domain=sd)
        for vm in vms)
    _fill_jobs(vms)
    _fill_workers(manager, clusters)


def _fill_jobs(vms: list) -> None:
    try:
        from jobs.models import BackupJob, ReconcileAction, RestorePoint, Session
    except ImportError:
        return
    from django.utils import timezone

    from repositories.models import Repository

    repository = Repository.objects.create(
        name="default", path="/nonexistent/bench", datamover_url="http://127.0.0.1:1",
        stats={"capacity": 10 * 2**40, "used": 3 * 2**40, "dedup_ratio": 2.4, "manifests": VMS // 2})
    tagged = BackupJob.objects.create(name="nightly by tag", repository=repository, selection="tag",
                                      tag="nightly", schedule_kind="daily",
                                      schedule_time=timezone.now().time())
    explicit = BackupJob.objects.create(name="chosen VMs", repository=repository)
    explicit.vms.set(vms[:200])
    now = timezone.now()
    sessions = Session.objects.bulk_create(
        Session(job=tagged if i % 2 else explicit, name="bench", created=now - timedelta(hours=i),
                started=now - timedelta(hours=i), finished=now - timedelta(hours=i) + timedelta(minutes=9),
                state=("success", "warning", "failed")[i % 3], bytes_stored=2**30)
        for i in range(SESSIONS))
    RestorePoint.objects.bulk_create(
        RestorePoint(vm=vm, vm_engine_id=vm.engine_id, vm_name=vm.name, repository=repository,
                     job=explicit, session=sessions[i % SESSIONS], manifest_id=f"m-{vm.pk}",
                     disks=[{"id": f"disk-{vm.pk}", "name": f"{vm.name}_os", "size": 20 * 2**30}],
                     time=now - timedelta(hours=i % 48))
        for i, vm in enumerate(vms[: VMS // 2]))
    ReconcileAction.objects.bulk_create(
        ReconcileAction(kind="snapshot_deleted", message=f"Deleted snapshot {i}") for i in range(20))


def _fill_workers(manager, clusters) -> None:
    try:
        from workers.models import Worker
    except ImportError:
        return
    for i, cluster in enumerate(clusters):
        Worker.objects.create(name=f"worker{i}", manager=manager, cluster=cluster, state="ready")


def _measure() -> dict:
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from django.urls import NoReverseMatch, reverse

    user = get_user_model().objects.create_superuser("bench", password="bench-only-password")
    client = Client()
    client.force_login(user)
    figures = {}
    for name, url_name, args in PAGES:
        try:
            url = reverse(url_name, args=args)
        except NoReverseMatch:
            continue
        # Warm-up (templates compiled, connections open); a page that redirects
        # (a wizard's first step) is timed where it leads.
        warm = client.get(url, follow=True)
        if warm.redirect_chain:
            url = warm.redirect_chain[-1][0]
        timings = []
        for _ in range(REPEATS):
            with CaptureQueriesContext(connection) as queries:
                started = time.perf_counter()
                response = client.get(url)
                timings.append((time.perf_counter() - started) * 1000)
        figures[name] = {"ms": round(statistics.median(timings), 1), "status": response.status_code,
                         "queries": len(queries.captured_queries)}
    return figures


def _child_main() -> None:
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.test.utils import override_settings, setup_test_environment

    from bench.inventory import _drop_temporary_postgres_database, _use_temporary_postgres_database

    setup_test_environment()  # the test client's host name is allowed
    if connection.vendor == "postgresql":
        _use_temporary_postgres_database()
    try:
        call_command("migrate", verbosity=0)
        _fill()
        # No collectstatic here: serve static names without the hashed manifest.
        with override_settings(STORAGES={
                "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
                "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}):
            figures = _measure()
    finally:
        _drop_temporary_postgres_database()
    print(json.dumps(figures))


if __name__ == "__main__":
    _child_main()
