"""Backup figures: a 4 GiB VM-like disk through the whole path, beside imageio, borg and restic.

On the simulator (real imageio, qemu-nbd, qcow2 dirty bitmaps), a VM with one
4 GiB qcow2 disk about 60% allocated (the data plane's mix of zero,
compressible and random data) is backed up by real runners (the control
runner's session driver, the embedded worker) into a real data mover:

1. full backup; 2. 1% of the disk rewritten in 1 MiB runs, incremental;
3. incremental with no change.

Before them the runners are warmed as on a server that has been running: each
has run a task, and another (small) VM is backed up once per control runner
process (django-q2 hands sessions to its processes in turn; a process's first
session pays its first engine login and first ORM and SDK calls).

The whole path runs in a child process (``python -m bench.jobs --whole-path``)
with its own SQLite database, so the bench never touches the configured one.
Beside it, on the same disk in the same run: the ovirt_imageio client's
download (raw, over TLS as from a worker), ``borg create --compression zstd,3``
and ``restic backup`` of the raw image. Each row: seconds, MB/s (of the disk's
allocated data), stored bytes and peak memory.

Targets (issue 8): full ≤ ½ borg's time and ≤ 2× the imageio download; stored
≤ 1.1× borg's; the 1% incremental ≤ ⅒ of the full; the no-change incremental
under 2 s.

Each backup row also gives the CPU seconds its parts used meanwhile: the worker
runner, the data mover, the simulator with its imageio daemon and qemu tools
(the engine and the host), and the control runner; on 2 cores a full that keeps
both busy can go no faster. ``BENCH_TIMELINE=1 python -m bench jobs`` also
prints each session's log and disk tasks in seconds from its start (on stderr).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.support import running_datamover, tree_cpu_seconds, wait_for_session

GiB, MiB = 1024**3, 1024**2
DISK_SIZE = 4 * GiB
ALLOCATED = 0.6
CHANGED = 0.01
RUN = MiB
ROOT = Path(__file__).resolve().parents[1]
# A database number of its own, so no other runner on this Redis takes the bench's tasks.
REDIS_URL = "redis://127.0.0.1:6379/13"
BENCH_DATABASE = "vbr_bench_jobs"
WARM_UP_VM = "small-vm2"  # the simulator's small seed: two small qcow2 disks


# The parent: simulator, data mover, comparisons


def run(report) -> None:
    from simulator.testing import running_simulator

    tools = ensure_tools()
    state = Path(tempfile.mkdtemp(prefix="bench-jobs-", dir="/var/tmp"))
    try:
        with running_simulator(state / "sim", seed="small", delays=0.05) as sim:
            vm_name, disk_id = make_bench_vm(sim, state)
            with running_datamover(state, "--workers", "1", "--threads", "8") as mover:
                figures = whole_path(sim, mover.url, mover.token, mover.path, state, vm_name,
                                     mover.process.pid)
            raw = guest_raw(sim, disk_id, state / "disk.raw")
            allocated = allocated_bytes(raw)
            rows = {row["name"]: row for row in figures}
            for row in figures:
                report.row(f"jobs {row['name']}", seconds=row["seconds"],
                           mb_per_s=row["bytes_read"] / row["seconds"] / 1e6 if row["seconds"] else 0.0,
                           read_mib=row["bytes_read"] // MiB, stored_mib=row["bytes_stored"] // MiB,
                           peak_rss_mib=row["peak_rss_mib"], **row["cpu"])
            others = {"imageio": imageio_download(sim, disk_id, state)}
            if tools.get("borg"):
                others["borg"] = borg(raw, state)
            if tools.get("restic"):
                others["restic"] = restic(raw, state)
            for row in others.values():
                report.row(f"jobs beside: {row['label']}", seconds=row["seconds"],
                           mb_per_s=allocated / row["seconds"] / 1e6, stored_mib=row["stored"] // MiB,
                           peak_rss_mib=row["peak_rss_mib"])
            report_targets(report, rows, others)
    finally:
        subprocess.run(["chmod", "-R", "u+w", str(state)], capture_output=True)
        shutil.rmtree(state, ignore_errors=True)


def ensure_tools() -> dict:
    """borg and restic, installed with apt when missing and we are root."""
    wanted = {"borg": "borgbackup", "restic": "restic"}
    missing = [package for tool, package in wanted.items() if not shutil.which(tool)]
    if missing and os.geteuid() == 0:
        print(f"  installing {' '.join(missing)} with apt-get", flush=True)
        subprocess.run(["apt-get", "install", "-y", "-q", *missing], capture_output=True)
    found = {tool: shutil.which(tool) for tool in wanted}
    for tool, path in found.items():
        if not path:
            print(f"  ({tool} is not installed: its row is left out)", flush=True)
    return found


def make_bench_vm(sim, state: Path) -> tuple[str, str]:
    """A VM with one 4 GiB qcow2 disk (incremental backup on), its volume seeded ~60% allocated."""
    from plugin import engine as ovirt
    from simulator.dataplane import DataPlane
    from simulator.pki import ensure_pki

    credentials = ovirt.ManagerCredentials(sim.url, sim.username, sim.password, sim.ca_file.read_text())
    with ovirt.connect(credentials) as engine:
        cluster = ovirt.list_clusters(engine)[0]
        domain = next(sd for sd in ovirt.list_storage_domains(engine) if sd.type in ("data", ""))
        vm = ovirt.create_vm(engine, ovirt.VmSpec(name="bench-vm", cluster_id=cluster.id))
        disk = ovirt.create_disk(engine, name="bench-vm_os", storage_domain_id=domain.id,
                                 provisioned_size=DISK_SIZE, format="cow", backup_incremental=True)
        ovirt.wait_disk_ok(engine, disk.id)
        ovirt.attach_disk(engine, vm.id, disk.id, bootable=True)
    path, _ = sim.disk_image(disk.id)
    # Replace the empty volume with a VM-like one before anything reads it.
    pki = ensure_pki(state / "pki", "127.0.0.1")
    (state / "seeding").mkdir(parents=True, exist_ok=True)
    plane = DataPlane(state / "seeding", tls=(pki.key_file, pki.cert_file, pki.ca_file))
    path.unlink()
    plane.seed_volume(path, "cow", DISK_SIZE, seed=11, allocated_fraction=ALLOCATED)
    # A guest's disk was written long before its backup: flush the seeding now, or the
    # first backup pays for writing 2.4 GB back (qemu-img flushes the volume when it adds
    # the checkpoint's bitmap).
    os.sync()
    return "bench-vm", disk.id


def whole_path(sim, url: str, token: str, repo_path: Path, state: Path, vm_name: str,
               mover_pid: int) -> list[dict]:
    """Run the three backups in a child process with its own database; their figures."""
    config = {"sim": {"url": sim.url, "username": sim.username, "password": sim.password,
                      "ca_file": str(sim.ca_file), "state_dir": str(sim.state_dir), "pid": sim.process.pid},
              "datamover": {"url": url, "token": token, "path": str(repo_path), "pid": mover_pid},
              "state": str(state), "vm": vm_name}
    database_url, redis_url = _database(state)
    env = {**os.environ, "DATABASE_URL": database_url,
           "VBR_DATA_DIR": str(state / "data"), "VBR_SECRET_KEY": secrets.token_urlsafe(32),
           "DJANGO_SETTINGS_MODULE": "vbrsite.settings", "VBR_LOG_LEVEL": "WARNING"}
    if redis_url:
        env["VBR_REDIS_URL"] = redis_url
    result = subprocess.run([sys.executable, "-m", "bench.jobs", "--whole-path", json.dumps(config)],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800)
    if redis_url:
        _drop_database()
    if os.environ.get("BENCH_TIMELINE"):
        print(result.stderr, file=sys.stderr)
    if result.returncode != 0:
        raise RuntimeError(f"the whole-path run failed:\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def _reachable(port: int) -> bool:
    import socket

    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def _database(state: Path) -> tuple[str, str | None]:
    """Production's stack when it is here (PostgreSQL and Redis: runners take tasks at once),
    else the embedded one (SQLite, the database as broker)."""
    if not (_reachable(5432) and _reachable(6379)):
        return f"sqlite:///{state / 'bench.sqlite3'}", None
    import redis

    redis.from_url(REDIS_URL).flushdb()  # tasks left by an interrupted bench
    _drop_database()
    with _postgres() as connection:
        connection.execute(f"CREATE DATABASE {BENCH_DATABASE}")
    return f"postgres://postgres@127.0.0.1:5432/{BENCH_DATABASE}", REDIS_URL


def _postgres():
    import psycopg

    return psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True)


def _drop_database() -> None:
    with _postgres() as connection:
        connection.execute(f"DROP DATABASE IF EXISTS {BENCH_DATABASE} WITH (FORCE)")


def guest_raw(sim, disk_id: str, target: Path) -> Path:
    path, fmt = sim.disk_image(disk_id)
    subprocess.run(["qemu-img", "convert", "-U", "-f", fmt, "-O", "raw", str(path), str(target)], check=True)
    return target


def allocated_bytes(raw: Path) -> int:
    return raw.stat().st_blocks * 512


def _timed(args: list[str], env: dict | None = None) -> tuple[float, float]:
    """Run a command; (seconds, its peak RSS in MiB).

    The peak is read from /proc (VmHWM, which exec resets) while it runs: the
    rusage of a forked child would include this process's own size.
    """
    with tempfile.TemporaryFile() as errors:
        start = time.perf_counter()
        process = subprocess.Popen(args, env={**os.environ, **(env or {})}, stdout=subprocess.DEVNULL,
                                   stderr=errors)
        peak = 0.0
        while process.poll() is None:
            peak = max(peak, _vm_hwm_mib(process.pid))
            time.sleep(0.05)
        seconds = time.perf_counter() - start
        if process.returncode != 0:
            errors.seek(0)
            raise RuntimeError(f"{args[0]} failed: {errors.read().decode(errors='replace')[-2000:]}")
    return seconds, peak


def _vm_hwm_mib(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def imageio_download(sim, disk_id: str, state: Path) -> dict:
    """The ovirt_imageio client's own download of the disk (raw), through an engine transfer."""
    from plugin import engine as ovirt

    credentials = ovirt.ManagerCredentials(sim.url, sim.username, sim.password, sim.ca_file.read_text())
    target = state / "imageio-download.raw"
    with ovirt.connect(credentials) as engine:
        transfer = ovirt.create_transfer(engine, direction="download", description="bench", disk_id=disk_id)
        try:
            transfer = ovirt.wait_transfer_ready(engine, transfer.id)
            code = ("import sys; from ovirt_imageio import client; "
                    "client.download(sys.argv[1], sys.argv[2], sys.argv[3], fmt='raw')")
            seconds, rss = _timed([sys.executable, "-c", code, transfer.transfer_url, str(target),
                                   str(sim.ca_file)])
        finally:
            ovirt.finalize_transfer(engine, transfer.id)
    target.unlink(missing_ok=True)
    return {"label": "ovirt_imageio client download (raw)", "seconds": seconds, "stored": 0,
            "peak_rss_mib": rss}


def _du(path: Path) -> int:
    return sum(p.stat().st_blocks * 512 for p in path.rglob("*") if p.is_file())


def borg(raw: Path, state: Path) -> dict:
    repo = state / "borg"
    env = {"BORG_PASSPHRASE": "", "BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK": "yes",
           "BORG_BASE_DIR": str(state / "borg-home")}
    subprocess.run(["borg", "init", "--encryption=none", str(repo)], env={**os.environ, **env},
                   check=True, capture_output=True)
    seconds, rss = _timed(["borg", "create", "--compression", "zstd,3", f"{repo}::disk", str(raw)], env)
    return {"label": "borg create --compression zstd,3", "seconds": seconds, "stored": _du(repo),
            "peak_rss_mib": rss}


def restic(raw: Path, state: Path) -> dict:
    repo = state / "restic"
    env = {"RESTIC_PASSWORD": "bench", "RESTIC_REPOSITORY": str(repo), "RESTIC_CACHE_DIR": str(state / "rc")}
    subprocess.run(["restic", "init"], env={**os.environ, **env}, check=True, capture_output=True)
    seconds, rss = _timed(["restic", "backup", str(raw)], env)
    return {"label": "restic backup", "seconds": seconds, "stored": _du(repo), "peak_rss_mib": rss}


def report_targets(report, rows: dict, others: dict) -> None:
    full, one, none = rows["full backup"], rows["incremental 1%"], rows["incremental no change"]
    checks = {"incremental_1pct_vs_full": one["seconds"] / full["seconds"],
              "no_change_seconds": none["seconds"],
              "full_vs_imageio": full["seconds"] / others["imageio"]["seconds"]}
    if "borg" in others:
        checks["full_vs_borg"] = full["seconds"] / others["borg"]["seconds"]
        checks["stored_vs_borg"] = full["bytes_stored"] / max(1, others["borg"]["stored"])
    limits = {"incremental_1pct_vs_full": 0.1, "no_change_seconds": 2.0, "full_vs_imageio": 2.0,
              "full_vs_borg": 0.5, "stored_vs_borg": 1.1}
    met = [name for name, value in checks.items() if value <= limits[name]]
    report.row("jobs targets", **checks, met=f"{len(met)}/{len(checks)}",
               missed=", ".join(sorted(set(checks) - set(met))) or "none")


# The child: the whole path with its own database and runners


def _whole_path_main(config: dict) -> None:
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from tests.support.processes import manage_py, stop_process

    job, admin = _records(config)
    env = dict(os.environ)
    logs = Path(config["state"])
    control = subprocess.Popen(manage_py("qcluster"), cwd=ROOT, env=env, start_new_session=True,
                               stdout=open(logs / "control.log", "ab"), stderr=subprocess.STDOUT)
    worker = subprocess.Popen(manage_py("qcluster"), cwd=ROOT, env={**env, "Q_CLUSTER_NAME": "embedded"},
                              start_new_session=True, stdout=open(logs / "worker.log", "ab"),
                              stderr=subprocess.STDOUT)
    for queue in ("control", "embedded"):
        _wait_ready(queue)
    _warm_up(job)
    trees = {"cpu_worker_s": worker.pid, "cpu_datamover_s": config["datamover"]["pid"],
             "cpu_engine_imageio_s": config["sim"]["pid"], "cpu_control_s": control.pid}
    rows = []
    try:
        rows.append(_backup(job, "full backup", worker, trees))
        _rewrite(admin, config["vm"])
        rows.append(_backup(job, "incremental 1%", worker, trees))
        rows.append(_backup(job, "incremental no change", worker, trees))
    finally:
        stop_process(control)
        stop_process(worker)
    print(json.dumps(rows))


def _wait_ready(queue: str, timeout: float = 120.0) -> None:
    """Until a runner of ``queue`` has run a task: its start-up (a second or two of CPU)
    must not land inside the first backup, as it never does on a running server."""
    from workers.runner import ping_queue

    if not ping_queue(queue, timeout):
        raise RuntimeError(f"the {queue} runner took no task within {timeout:.0f} s")


def _warm_up(job) -> None:
    """Back up another, small VM once per runner process first, as a server that has been
    running has done: django-q2 hands tasks to its processes in turn, and a process's first
    session pays its first engine login and its first ORM and SDK calls (30 ms or so here)."""
    from django.conf import settings

    from inventory.models import VM
    from jobs import services
    from jobs.models import BackupJob

    warm = BackupJob.objects.create(name="bench warm-up", repository=job.repository, parallel_vms=1)
    warm.vms.set([VM.objects.get(manager=job.vms.get().manager, name=WARM_UP_VM)])
    for _ in range(settings.Q_CLUSTER["workers"]):
        wait_for_session(services.run_job(warm), "warm-up backup")


def _records(config: dict):
    from inventory.models import VM, Manager
    from inventory.sync import sync_manager
    from jobs.models import BackupJob
    from repositories.models import Repository
    from simulator.cli import AdminClient

    sim = config["sim"]
    manager = Manager.objects.create(name="bench", url=sim["url"], username=sim["username"],
                                     password=sim["password"], ca_certificate=Path(sim["ca_file"]).read_text())
    sync_manager(manager)
    mover = config["datamover"]
    repository = Repository.objects.create(name="bench", path=mover["path"], datamover_url=mover["url"],
                                           token=mover["token"])
    job = BackupJob.objects.create(name="bench", repository=repository, parallel_vms=1)
    job.vms.set([VM.objects.get(manager=manager, name=config["vm"])])
    return job, AdminClient(Path(sim["state_dir"]))


def _rewrite(admin, vm_name: str) -> None:
    """Rewrite 1% of the disk in 1 MiB runs spread over it, as a guest would."""
    runs = int(DISK_SIZE * CHANGED) // RUN
    stride = DISK_SIZE // runs
    for index in range(runs):
        admin.call("POST", "guest-write", {"vm": vm_name, "offset": index * stride + (index % 7) * RUN,
                                           "length": RUN, "seed": 1000 + index})


def _backup(job, name: str, worker, trees: dict[str, int]) -> dict:
    """One session's figures, with the CPU seconds each part of the path used meanwhile."""
    from jobs import services

    before = {part: tree_cpu_seconds(pid) for part, pid in trees.items()}
    session = wait_for_session(services.run_job(job), name)
    cpu = {part: round(tree_cpu_seconds(pid) - before[part], 2) for part, pid in trees.items()}
    if os.environ.get("BENCH_TIMELINE"):
        _print_timeline(session, name)
    return {"name": name, "seconds": (session.finished - session.started).total_seconds(),
            "bytes_read": session.bytes_read, "bytes_stored": session.bytes_stored,
            "peak_rss_mib": _group_peak_rss_mib(worker.pid), "cpu": cpu}


def _print_timeline(session, name: str) -> None:
    """BENCH_TIMELINE=1: the session's log and disk tasks, in seconds from its start (on stderr)."""
    from workers.models import DiskTask

    def at(moment) -> str:
        return f"{(moment - session.started).total_seconds():7.3f}" if moment else "      -"

    events = [(line.time, line.message) for line in session.log_lines.all()]
    for task in DiskTask.objects.filter(session_id=session.pk):
        events += [(task.created, f"disk task {task.pk} created"), (task.started, f"disk task {task.pk} started"),
                   (task.finished, f"disk task {task.pk} {task.state} {(task.result or {}).get('figures')}")]
    print(f"-- {name}: created {at(session.created)}", file=sys.stderr)
    for moment, message in sorted((e for e in events if e[0]), key=lambda e: e[0]):
        print(f"{at(moment)}  {message[:150]}", file=sys.stderr)
    print(f"{at(session.finished)}  session finished", file=sys.stderr)


def _group_peak_rss_mib(pgid: int) -> float:
    """The largest peak RSS (VmHWM) of the processes of a runner's process group, in MiB."""
    peak = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if os.getpgid(int(entry.name)) != pgid:
                continue
        except (OSError, ProcessLookupError):
            continue
        peak = max(peak, _vm_hwm_mib(int(entry.name)))
    return peak


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--whole-path":
        _whole_path_main(json.loads(sys.argv[2]))
    else:
        sys.exit("usage: python -m bench.jobs --whole-path CONFIG_JSON (make bench runs run(report))")
