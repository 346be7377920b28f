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

Target: the restore takes at most 1.5× the client's time. Each result is
checked against the source with qemu-img compare.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench.report import stopwatch

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


def run(report) -> None:
    from ovirt_imageio import client as imageio_client

    from repositories.datamover.client import DataMoverClient
    from simulator.dataplane import DataPlane
    from simulator.pki import ensure_pki
    from tests.support.processes import free_port, stop_process, wait_for_port
    from workers.runtime import ImageioClient, restore_disk
    from workers.runtime.common import NullMonitor

    state = Path(tempfile.mkdtemp(prefix="bench-restore-", dir="/var/tmp"))
    datamover = None
    plane = None
    try:
        pki = ensure_pki(state, "127.0.0.1")
        plane = DataPlane(state, tls=(pki.key_file, pki.cert_file, pki.ca_file))
        source = state / "source.raw"
        plane.seed_volume(source, "raw", DISK_SIZE, seed=11, allocated_fraction=ALLOCATED)
        allocated = plane.volume_info(source)["actual_size"]
        (state / "token").write_text("bench-token")
        port = free_port()
        datamover = subprocess.Popen(
            [sys.executable, "-m", "repositories.datamover", "--path", str(state / "repository"),
             "--token-file", str(state / "token"), "--bind", f"127.0.0.1:{port}", "--init"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        wait_for_port(port, process=datamover)
        plane.start()
        with DataMoverClient(f"http://127.0.0.1:{port}", "bench-token", pool_size=8) as mover:
            index = store_disk(mover, source)
            label = f"4 GiB disk, {allocated // MiB} MiB allocated"
            times = {}

            def upload_target(name: str, tls: bool):
                volume = state / f"{name}.qcow2"
                plane.create_volume(volume, "cow", DISK_SIZE)
                if tls:
                    # Transfers opened while a drop fault is armed go through a relay on
                    # 127.0.0.2: the client then stays on TLS, as from another host.
                    plane.drop_connections_after(None, 1 << 62)
                endpoint = plane.open_transfer(name, volume, "cow", "upload", "raw", DISK_SIZE, 3600, 600)
                return volume, endpoint

            for name, tls in (("client-socket", False), ("client-tls", True)):
                volume, endpoint = upload_target(name, tls)
                with stopwatch() as took:
                    imageio_client.upload(str(source), endpoint.transfer_url, str(pki.ca_file))
                plane.close_transfer(name)
                plane.clear_faults()
                assert same(source, "raw", volume, "qcow2"), f"{name}: the upload differs from the source"
                times[name] = took["seconds"]
                via = "unix socket" if not tls else "TLS"
                report.row(f"restore: imageio client upload ({via}), {label}", seconds=took["seconds"],
                           mb_per_s=allocated / took["seconds"] / 1e6)

            volume, endpoint = upload_target("restore", True)
            with stopwatch() as took:
                figures = restore_disk(ImageioClient(endpoint.transfer_url, ca_file=str(pki.ca_file)),
                                       mover, None, index, connections=4, monitor=NullMonitor())
            plane.close_transfer("restore")
            plane.clear_faults()
            assert same(source, "raw", volume, "qcow2"), "the restored disk differs from the source"
            seconds = took["seconds"]
            report.row(f"restore: worker restore from the repository (TLS), {label}", seconds=seconds,
                       mb_per_s=allocated / seconds / 1e6, bytes_written=figures.get("bytes_written", 0),
                       bytes_zeroed=figures.get("bytes_zeroed", 0),
                       x_client_socket=seconds / times["client-socket"],
                       x_client_tls=seconds / times["client-tls"],
                       target=f"<= {TARGET_RATIO}x client")
            _export_rows(report, mover, index, source, state, label)
    finally:
        if plane is not None:
            plane.stop()
        if datamover is not None:
            stop_process(datamover)
        shutil.rmtree(state, ignore_errors=True)
