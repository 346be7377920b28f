"""Restore figures: a 4 GiB VM-like disk written back through imageio, beside the imageio client's upload.

The disk (4 GiB, about 60% allocated, seeded by the simulator's data plane) is
first stored in a data mover's repository the way a backup stores it. Then, on
the simulator's real imageio daemon and qemu-nbd, into fresh qcow2 volumes:

- the worker's restore (workers.runtime.restore_disk): chunks fetched from the
  data mover, decoded, checked, written with PUT over several TLS connections,
  zero blocks as PATCH zero (what every restore session runs for each disk);
- the ovirt_imageio client's upload of the same image from a local raw file,
  through the daemon's unix socket (its default on the same host) and over TLS
  (as from another host);
- export_disk's writers (no engine): a sparse raw file and a qcow2 file.

Then the whole path on the simulator: a restore session (control runner,
embedded worker runner, own SQLite database in a child process) restores a VM
with the 4 GiB qcow2 disk as a new VM — disk created, upload transfer, worker,
finalize, VM from the OVF — beside the client's upload into a new disk of the
same engine (an engine transfer, as an administrator would do it by hand).

Target: the restore takes at most 1.5× the client's time. Each result is
checked against the source with qemu-img compare.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from bench.report import stopwatch
from bench.support import running_datamover, wait_for_session

GiB = 1024**3
MiB = 1024**2
DISK_SIZE = 4 * GiB
ALLOCATED = 0.6
TARGET_RATIO = 1.5


def store_disk(client, raw: Path):
    """Chunk the raw image into the repository like a backup; its DiskIndex."""
    from repositories.store import (
        BLOCK_SIZE,
        DiskIndex,
        block_digest,
        build_manifest,
        encode_chunk,
        is_zero,
    )

    index = DiskIndex(id="bench-disk", size=raw.stat().st_size, name="bench_disk")

    def store(block_index: int) -> None:
        with open(raw, "rb") as f:
            f.seek(block_index * BLOCK_SIZE)
            block = f.read(BLOCK_SIZE)
        if is_zero(block):
            return
        digest = block_digest(block)
        index.blocks[block_index] = digest
        if client.missing([digest]):
            client.put_chunk(digest, encode_chunk(block))

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(store, range(len(index.blocks))))
    client.put_manifest(build_manifest("rp-bench", "bench-vm", [index], vm_name="bench"))
    return index


def same(a: Path, a_format: str, b: Path, b_format: str) -> bool:
    return subprocess.run(["qemu-img", "compare", "-U", "-f", a_format, "-F", b_format, str(a), str(b)],
                          capture_output=True).returncode == 0


def _export_rows(report, mover, index, source: Path, state: Path, label: str) -> None:
    """export_disk's writers on the same restore point: a sparse raw file and a qcow2 through qemu-nbd."""
    from jobs.restore.export import _write_qcow2, _write_raw

    for fmt, writer, qemu_format in (("raw", _write_raw, "raw"), ("qcow2", _write_qcow2, "qcow2")):
        output = state / f"export.{fmt}"
        with stopwatch() as took:
            written = writer(mover, index, None, output, None, 4)
        assert same(source, "raw", output, qemu_format), f"the {fmt} export differs from the source"
        report.row(f"restore: export to a local {fmt} file, {label}", seconds=took["seconds"],
                   mb_per_s=written / took["seconds"] / 1e6,
                   file_allocated_mib=output.stat().st_blocks * 512 // MiB)
        output.unlink()


@dataclass
class DataPath:
    """The bench's data plane, repository and source image."""

    plane: object
    mover: object
    ca_file: str
    state: Path
    source: Path
    allocated: int

    @property
    def label(self) -> str:
        return f"4 GiB disk, {self.allocated // MiB} MiB allocated"

    def upload_target(self, name: str, tls: bool):
        """A fresh qcow2 volume and an upload transfer into it."""
        volume = self.state / f"{name}.qcow2"
        self.plane.create_volume(volume, "cow", DISK_SIZE)
        if tls:
            # Transfers opened while a drop fault is armed go through a relay on
            # 127.0.0.2: the client then stays on TLS, as from another host.
            self.plane.drop_connections_after(None, 1 << 62)
        endpoint = self.plane.open_transfer(name, volume, "cow", "upload", "raw", DISK_SIZE, 3600, 600)
        return volume, endpoint

    def close(self, name: str, volume: Path) -> None:
        self.plane.close_transfer(name)
        self.plane.clear_faults()
        assert same(self.source, "raw", volume, "qcow2"), f"{name}: the result differs from the source"


def _client_rows(report, path: DataPath) -> dict[str, float]:
    from ovirt_imageio import client as imageio_client

    times = {}
    for name, tls in (("client-socket", False), ("client-tls", True)):
        volume, endpoint = path.upload_target(name, tls)
        with stopwatch() as took:
            imageio_client.upload(str(path.source), endpoint.transfer_url, path.ca_file)
        path.close(name, volume)
        times[name] = took["seconds"]
        report.row(f"restore: imageio client upload ({'TLS' if tls else 'unix socket'}), {path.label}",
                   seconds=took["seconds"], mb_per_s=path.allocated / took["seconds"] / 1e6)
    return times


def _restore_row(report, path: DataPath, index, times: dict[str, float]) -> None:
    from workers.runtime import ImageioClient, restore_disk
    from workers.runtime.common import NullMonitor

    volume, endpoint = path.upload_target("restore", True)
    with stopwatch() as took:
        figures = restore_disk(ImageioClient(endpoint.transfer_url, ca_file=path.ca_file), path.mover, None,
                               index, connections=4, monitor=NullMonitor())
    path.close("restore", volume)
    seconds = took["seconds"]
    report.row(f"restore: worker restore from the repository (TLS), {path.label}", seconds=seconds,
               mb_per_s=path.allocated / seconds / 1e6, bytes_written=figures.get("bytes_written", 0),
               bytes_zeroed=figures.get("bytes_zeroed", 0), x_client_socket=seconds / times["client-socket"],
               x_client_tls=seconds / times["client-tls"], target=f"<= {TARGET_RATIO}x client")


def run(report) -> None:
    from repositories.datamover.client import DataMoverClient
    from simulator.dataplane import DataPlane
    from simulator.pki import ensure_pki
    state = Path(tempfile.mkdtemp(prefix="bench-restore-", dir="/var/tmp"))
    plane = None
    try:
        pki = ensure_pki(state, "127.0.0.1")
        plane = DataPlane(state, tls=(pki.key_file, pki.cert_file, pki.ca_file))
        source = state / "source.raw"
        plane.seed_volume(source, "raw", DISK_SIZE, seed=11, allocated_fraction=ALLOCATED)
        plane.start()
        with running_datamover(state) as datamover, \
                DataMoverClient(datamover.url, datamover.token, pool_size=8) as mover:
            path = DataPath(plane, mover, str(pki.ca_file), state, source,
                            plane.volume_info(source)["actual_size"])
            index = store_disk(mover, source)
            times = _client_rows(report, path)
            _restore_row(report, path, index, times)
            _export_rows(report, mover, index, source, state, path.label)
    finally:
        if plane is not None:
            plane.stop()
        shutil.rmtree(state, ignore_errors=True)
    run_whole_path(report)


# The whole path: a restore session on the simulator, beside the client's upload through the engine


def run_whole_path(report) -> None:
    from bench.jobs import make_bench_vm
    from simulator.testing import running_simulator

    state = Path(tempfile.mkdtemp(prefix="bench-restore-path-", dir="/var/tmp"))
    try:
        with running_simulator(state / "sim", seed="small", delays=0.05) as sim, \
                running_datamover(state, "--workers", "1", "--threads", "8") as datamover:
            url, token, repo_path = datamover.url, datamover.token, datamover.path
            vm_name, disk_id = make_bench_vm(sim, state)
            raw = state / "disk.raw"
            path, fmt = sim.disk_image(disk_id)
            subprocess.run(["qemu-img", "convert", "-U", "-f", "qcow2" if fmt in ("cow", "qcow2") else "raw",
                            "-O", "raw", str(path), str(raw)], check=True)
            allocated = raw.stat().st_blocks * 512
            manifest_id = _store_point(sim, url, token, raw, vm_name, disk_id)
            config = {"sim": {"url": sim.url, "username": sim.username, "password": sim.password,
                              "ca_file": str(sim.ca_file)},
                      "datamover": {"url": url, "token": token, "path": str(repo_path)},
                      "state": str(state), "vm": vm_name, "manifest_id": manifest_id, "disk_id": disk_id}
            row = _child(config, state)
            upload = _engine_upload(sim, raw)
            label = f"4 GiB disk, {allocated // MiB} MiB allocated"
            report.row(f"restore: whole restore session as a new VM, {label}", seconds=row["seconds"],
                       mb_per_s=allocated / row["seconds"] / 1e6, worker_seconds=row["worker_seconds"],
                       x_client=row["seconds"] / upload)
            report.row(f"restore beside: imageio client upload into a new engine disk, {label}",
                       seconds=upload, mb_per_s=allocated / upload / 1e6)
    finally:
        subprocess.run(["chmod", "-R", "u+w", str(state)], capture_output=True)
        shutil.rmtree(state, ignore_errors=True)


def _credentials(sim):
    from plugin import engine as ovirt

    return ovirt.ManagerCredentials(sim.url, sim.username, sim.password, sim.ca_file.read_text())


def _store_point(sim, url: str, token: str, raw: Path, vm_name: str, disk_id: str) -> str:
    """The VM as a restore point in the repository (its disk chunked, its OVF); the manifest id."""
    from plugin import engine as ovirt
    from repositories.datamover.client import DataMoverClient
    from repositories.store import build_manifest

    with ovirt.connect(_credentials(sim)) as engine:
        vm = ovirt.find_vm(engine, vm_name)
        ovf = ovirt.get_vm_ovf(engine, vm.id)
        disk = ovirt.get_disk(engine, disk_id)
    with DataMoverClient(url, token, pool_size=8) as mover:
        index = store_disk(mover, raw)
        index.id, index.name, index.format = disk.id, disk.name, disk.format
        manifest = build_manifest("rp-bench-path", vm.id, [index], vm_name=vm.name, ovf=ovf)
        mover.put_manifest(manifest)
    return manifest.id


def _child(config: dict, state: Path) -> dict:
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{state / 'bench.sqlite3'}",
           "VBR_DATA_DIR": str(state / "data"), "VBR_SECRET_KEY": secrets.token_urlsafe(32),
           "DJANGO_SETTINGS_MODULE": "vbrsite.settings", "VBR_LOG_LEVEL": "WARNING"}
    result = subprocess.run([sys.executable, "-m", "bench.restore", "--whole-path", json.dumps(config)],
                            env=env, capture_output=True, text=True, timeout=1800)
    if result.returncode != 0:
        raise RuntimeError(f"the whole-path restore failed:\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def _engine_upload(sim, raw: Path) -> float:
    """Seconds of the client's upload of the raw image into a new 4 GiB disk, through an engine transfer."""
    from ovirt_imageio import client as imageio_client

    from plugin import engine as ovirt

    with ovirt.connect(_credentials(sim)) as engine:
        domain = next(sd for sd in ovirt.list_storage_domains(engine) if sd.type in ("data", ""))
        disk = ovirt.create_disk(engine, name="bench-upload", storage_domain_id=domain.id,
                                 provisioned_size=DISK_SIZE, format="cow")
        ovirt.wait_disk_ok(engine, disk.id)
        transfer = ovirt.create_transfer(engine, direction="upload", description="bench", disk_id=disk.id)
        transfer = ovirt.wait_transfer_ready(engine, transfer.id)
        with stopwatch() as took:
            imageio_client.upload(str(raw), transfer.transfer_url, str(sim.ca_file))
        ovirt.finalize_transfer(engine, transfer.id)
        ovirt.wait_transfer_finished(engine, transfer.id, disk.id)
    return took["seconds"]


def _whole_path_main(config: dict) -> None:
    """In the child: records, runners, one restore session; prints its figures as JSON."""
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from tests.support.processes import manage_py, stop_process

    point = _records(config)
    logs = Path(config["state"])
    env = dict(os.environ)
    runners = [subprocess.Popen(manage_py("qcluster"), env={**env, **extra}, start_new_session=True,
                                stdout=open(logs / f"{name}.log", "ab"), stderr=subprocess.STDOUT)
               for name, extra in (("control", {}), ("worker", {"Q_CLUSTER_NAME": "embedded"}))]
    try:
        row = _restore_session(point)
    finally:
        for runner in runners:
            stop_process(runner)
    print(json.dumps(row))


def _records(config: dict):
    from inventory.models import VM, Manager
    from inventory.sync import sync_manager
    from jobs.models import RestorePoint
    from repositories.models import Repository

    sim, mover = config["sim"], config["datamover"]
    manager = Manager.objects.create(name="bench", url=sim["url"], username=sim["username"],
                                     password=sim["password"], ca_certificate=Path(sim["ca_file"]).read_text())
    sync_manager(manager)
    repository = Repository.objects.create(name="bench", path=mover["path"], datamover_url=mover["url"],
                                           token=mover["token"])
    vm = VM.objects.get(manager=manager, name=config["vm"])
    return RestorePoint.objects.create(vm=vm, vm_engine_id=vm.engine_id, vm_name=vm.name,
                                       repository=repository, manifest_id=config["manifest_id"],
                                       disks=[{"id": config["disk_id"], "name": "bench-vm_os",
                                               "size": DISK_SIZE, "format": "cow"}], size=DISK_SIZE)


def _restore_session(point) -> dict:
    from jobs.restore.requests import RestoreRequest, submit_restore
    from workers.models import DiskTask

    session = wait_for_session(submit_restore(RestoreRequest(point=point.pk, name="bench-vm-restored")),
                               "the restore")
    task = DiskTask.objects.get(session_id=session.pk)
    return {"seconds": (session.finished - session.started).total_seconds(),
            "worker_seconds": task.figures().get("seconds", 0.0)}


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--whole-path":
        _whole_path_main(json.loads(sys.argv[2]))
    else:
        sys.exit("usage: python -m bench.restore --whole-path CONFIG_JSON (make bench runs run(report))")
