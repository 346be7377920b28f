"""Workers: a worker moving a 4 GiB disk (seconds, MB/s, peak memory) beside the imageio client.

The disk is a qcow2 of 4 GiB, about 60% allocated, served by the simulator's
data plane (real imageio daemon over qemu-nbd). The worker's backup and
restore each run in a process of their own, with Django set up as in a
runner, so that its peak RSS is the worker's whole footprint; it must stay
under 256 MiB. The imageio client's own download and upload of the same disk
run beside it. Both are measured over the daemon's unix socket (a worker on
the imageio host) and over TLS through a pass-through relay (a worker on
another machine).
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.report import stopwatch

GiB = 1024**3
MiB = 1024**2
SIZE = 4 * GiB
MEMORY_LIMIT_MIB = 256
ROOT = Path(__file__).resolve().parents[1]
# The daemon's unix socket (a worker on the imageio host), and TLS through a pass-through
# relay on 127.0.0.2 (a worker on another machine): the client is measured both ways too.
VIAS = ("unix socket", "TLS")


def _open(plane, transfer_id: str, via: str, *args):
    """Open a transfer; with via TLS, its URL is the relay's so no one sees a local daemon."""
    if via == "TLS":
        plane.drop_connections_after(None, 1 << 62)
    return plane.open_transfer(transfer_id, *args)


def run(report) -> None:
    from ovirt_imageio import client

    from simulator.dataplane import DataPlane
    from simulator.pki import ensure_pki

    state = Path(tempfile.mkdtemp(prefix="bench-workers-", dir="/var/tmp"))
    try:
        pki = ensure_pki(state, "127.0.0.1")
        plane = DataPlane(state, tls=(pki.key_file, pki.cert_file, pki.ca_file))
        volume = state / "disk4g.qcow2"
        plane.seed_volume(volume, "cow", SIZE, seed=42, allocated_fraction=0.6)
        allocated = plane.volume_info(volume)["actual_size"]
        plane.start()
        try:
            # Each backup goes into an empty repository; the last one also serves the restores.
            for number, via in enumerate(VIAS):
                with _datamover(state / f"mover-{number}") as (url, token, _repository):
                    index_file = _worker_backup(report, plane, pki, volume, url, token, allocated,
                                                via)
                    if via != VIAS[-1]:
                        continue
                    _worker_backup(report, plane, pki, volume, url, token, allocated, via,
                                   label="again, every block already stored")
                    _client_download(report, plane, pki, volume, state, client)
                    for restore_via in VIAS:
                        _worker_restore(report, plane, pki, state, url, token, index_file, volume,
                                        restore_via)
                    _client_upload(report, plane, pki, volume, state, client)
        finally:
            plane.stop()
    finally:
        shutil.rmtree(state, ignore_errors=True)


class _datamover:
    """A standalone data mover over a fresh repository, for the run."""

    def __init__(self, state: Path):
        self.state = state
        state.mkdir(parents=True, exist_ok=True)

    def __enter__(self):
        from tests.support.processes import free_port, wait_for_port

        token_file = self.state / "token"
        token_file.write_text("bench-workers")
        port = free_port()
        self.repository = self.state / "repository"
        self.log = open(self.state / "datamover.log", "ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "repositories.datamover", "--path", str(self.repository),
             "--token-file", str(token_file), "--bind", f"127.0.0.1:{port}", "--init",
             "--workers", "2", "--threads", "8"],
            cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        wait_for_port(port, process=self.process)
        return f"http://127.0.0.1:{port}", "bench-workers", self.repository

    def __exit__(self, *exc_info):
        from tests.support.processes import stop_process

        stop_process(self.process)
        self.log.close()


def _child(report_name: str, args: list[str]) -> dict:
    """Run one mover in a process of its own; its figures and peak RSS."""
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "bench.workers", *args], cwd=ROOT,
                          capture_output=True, text=True, env={**os.environ})
    if done.returncode != 0:
        raise RuntimeError(f"{report_name} failed:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["wall_seconds"] = time.monotonic() - started
    return result


def _worker_backup(report, plane, pki, volume, url, token, allocated, via,
                   label: str = "60% allocated, into an empty repository") -> Path:
    endpoint = _open(plane, "bench-backup", via, volume, "cow", "download", "raw", SIZE, 600, 60)
    index_file = volume.with_suffix(".index.json")
    try:
        result = _child("worker backup", ["backup", endpoint.transfer_url, str(pki.ca_file), url,
                                          token, str(index_file)])
    finally:
        plane.close_transfer("bench-backup")
        plane.clear_faults()
    figures = result["figures"]
    report.row(f"worker backup 4 GiB, {label} ({via})",
               seconds=figures["seconds"], mb_per_s=figures["bytes_read"] / figures["seconds"] / 1e6,
               read_mib=figures["bytes_read"] // MiB, stored_mib=figures["bytes_stored"] // MiB,
               allocated_mib=allocated // MiB, worker_cpu_s=result["cpu_seconds"],
               peak_rss_mib=result["peak_rss_mib"],
               under_256_mib=result["peak_rss_mib"] < MEMORY_LIMIT_MIB)
    return index_file


def _client_download(report, plane, pki, volume, state, client) -> None:
    for via in VIAS:
        endpoint = _open(plane, "bench-client", via, volume, "cow", "download", "raw", SIZE, 600, 60)
        target = state / "client-download.raw"
        try:
            with stopwatch() as took:
                client.download(endpoint.transfer_url, str(target), str(pki.ca_file), fmt="raw")
        finally:
            plane.close_transfer("bench-client")
            plane.clear_faults()
            target.unlink(missing_ok=True)
        report.row(f"imageio client download 4 GiB ({via})", seconds=took["seconds"],
                   mb_per_s=SIZE / took["seconds"] / 1e6)


def _worker_restore(report, plane, pki, state, url, token, index_file, source, via) -> None:
    target = state / "restored.qcow2"
    plane.create_volume(target, "cow", SIZE)
    endpoint = _open(plane, "bench-restore", via, target, "cow", "upload", "raw", SIZE, 600, 60)
    try:
        result = _child("worker restore", ["restore", endpoint.transfer_url, str(pki.ca_file), url,
                                           token, str(index_file)])
    finally:
        plane.close_transfer("bench-restore")
        plane.clear_faults()
    same = subprocess.run(["qemu-img", "compare", "-q", str(source), str(target)]).returncode == 0
    figures = result["figures"]
    report.row(f"worker restore 4 GiB ({via})", seconds=figures["seconds"],
               mb_per_s=figures["bytes_written"] / figures["seconds"] / 1e6,
               written_mib=figures["bytes_written"] // MiB, worker_cpu_s=result["cpu_seconds"],
               peak_rss_mib=result["peak_rss_mib"],
               under_256_mib=result["peak_rss_mib"] < MEMORY_LIMIT_MIB, identical=same)
    plane.delete_volume(target)


def _client_upload(report, plane, pki, volume, state, client) -> None:
    for via in VIAS:
        target = state / "client-upload.qcow2"
        plane.create_volume(target, "cow", SIZE)
        endpoint = _open(plane, "bench-upload", via, target, "cow", "upload", "raw", SIZE, 600, 60)
        try:
            with stopwatch() as took:
                client.upload(str(volume), endpoint.transfer_url, str(pki.ca_file))
        finally:
            plane.close_transfer("bench-upload")
            plane.clear_faults()
        report.row(f"imageio client upload 4 GiB ({via})", seconds=took["seconds"],
                   mb_per_s=SIZE / took["seconds"] / 1e6)
        plane.delete_volume(target)


# The child process: one mover, as a worker runner runs it


def _main(argv: list[str]) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "vbrsite.settings")
    import django

    django.setup()  # a runner's footprint includes Django and the project's apps
    from repositories.datamover.client import DataMoverClient
    from repositories.store import DiskIndex
    from workers.runtime import ImageioClient, NullMonitor, backup_disk, restore_disk

    kind, transfer_url, ca_file, mover_url, token, index_file = argv
    source = ImageioClient(transfer_url, ca_file=ca_file)
    with DataMoverClient(mover_url, token) as mover:
        if kind == "backup":
            result = backup_disk(source, mover, None, disk_id="bench-disk", monitor=NullMonitor())
            Path(index_file).write_text(json.dumps(result.index.to_dict()))
            figures = result.figures
        else:
            index = DiskIndex(**json.loads(Path(index_file).read_text()))
            figures = restore_disk(source, mover, None, index, monitor=NullMonitor())
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({"figures": figures, "peak_rss_mib": round(usage.ru_maxrss / 1024, 1),
                      "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 2)}))


if __name__ == "__main__":
    _main(sys.argv[1:])
