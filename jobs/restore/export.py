"""Export one disk of a restore point to a local sparse raw or qcow2 file (no engine).

Raw: the file is sized to the disk, and only non-zero runs are written, so
zero blocks (and zero runs inside blocks) stay holes. Qcow2: a new image is
created with qemu-img and written through qemu-nbd, so unwritten clusters stay
unallocated; no temporary raw copy is needed. Memory stays bounded by the
reader's window (see blocks.py).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from jobs.restore.blocks import data_runs, read_blocks
from jobs.restore.points import RestoreError, find_disk, held, load_manifest, manifest_disk
from repositories.datamover.client import DataMoverError
from repositories.store import ChunkError, DiskIndex, RepositoryKeyError

FORMATS = ("raw", "qcow2")
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class ExportResult:
    """What an export wrote: the file, the disk's size and the bytes of data written."""

    path: Path
    format: str
    size: int
    bytes_written: int
    seconds: float

    @property
    def rate(self) -> float:
        """Bytes of data written per second."""
        return self.bytes_written / self.seconds if self.seconds > 0 else 0.0


def export_disk(point, disk: str, output: str | os.PathLike, *, format: str = "raw",
                progress: Progress | None = None, threads: int = 4) -> ExportResult:
    """Write disk ``disk`` (engine id or name) of restore point ``point`` to ``output``.

    The output must not exist yet; a failed export removes what it wrote.
    ``progress(bytes_done, bytes_total)`` is called after each block.
    """
    if format not in FORMATS:
        raise RestoreError(f"unknown format {format!r}: use raw or qcow2")
    output = Path(output)
    if output.exists():
        raise RestoreError(f"{output} exists already: remove it or choose another file")
    if not output.parent.is_dir():
        raise RestoreError(f"the folder {output.parent} doesn't exist: create it first")
    source = find_disk(point, disk)
    started = time.monotonic()
    with held(point, f"export of {point.vm_name} {source.get('name') or source['id']}"), \
            point.repository.client() as client:
        index = manifest_disk(load_manifest(point, client), source["id"])
        writer = _write_raw if format == "raw" else _write_qcow2
        try:
            written = writer(client, index, point.repository.repository_key(), output,
                             progress, threads)
        except BaseException as exc:
            output.unlink(missing_ok=True)
            if isinstance(exc, (DataMoverError, ChunkError, RepositoryKeyError, OSError)):
                raise RestoreError(f"export of disk {source.get('name') or source['id']} failed: "
                                   f"{exc}") from None
            raise
    return ExportResult(output, format, index.size, written, time.monotonic() - started)


def _copy_blocks(client, index: DiskIndex, key, write: Callable[[int, memoryview], None],
                 progress: Progress | None, threads: int) -> int:
    total = index.allocated_bytes()
    done = written = 0
    if progress:
        progress(0, total)
    for block in read_blocks(client, index, key, threads=threads):
        for offset, run in data_runs(block):
            write(offset, run)
            written += len(run)
        done += len(block.data)
        if progress:
            progress(done, total)
    return written


def _write_raw(client, index: DiskIndex, key, output: Path, progress, threads) -> int:
    fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        # Size first: every byte never written reads as zero and takes no space.
        os.ftruncate(fd, index.size)

        def write(offset: int, data: memoryview) -> None:
            while data:
                count = os.pwrite(fd, data, offset)
                data, offset = data[count:], offset + count

        written = _copy_blocks(client, index, key, write, progress, threads)
        os.fsync(fd)
        return written
    finally:
        os.close(fd)


def _write_qcow2(client, index: DiskIndex, key, output: Path, progress, threads) -> int:
    from ovirt_imageio._internal import nbd

    _run(["qemu-img", "create", "-q", "-f", "qcow2", "-o", "compat=1.1", str(output),
          str(index.size)])
    with _qemu_nbd(output, "qcow2") as socket_path, \
            nbd.Client(nbd.UnixAddress(socket_path)) as target:
        written = _copy_blocks(client, index, key, lambda offset, data: target.write(offset, data),
                               progress, threads)
        target.flush()
    return written


@contextmanager
def _qemu_nbd(image: Path, image_format: str):
    """Serve an image for writing on a private unix socket for the duration of the block."""
    folder = tempfile.mkdtemp(prefix="vbr-export-")
    socket_path = os.path.join(folder, "nbd.sock")
    process = subprocess.Popen(
        ["qemu-nbd", "--format", image_format, "--socket", socket_path, "--cache", "writeback",
         "--discard", "unmap", "--shared", "1", str(image)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        _wait_for_socket(process, socket_path)
        yield socket_path
    finally:
        if process.poll() is None:
            process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        process.stderr.close()
        shutil.rmtree(folder, ignore_errors=True)


def _wait_for_socket(process: subprocess.Popen, socket_path: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not os.path.exists(socket_path):
        if process.poll() is not None:
            raise RestoreError(f"qemu-nbd failed: {process.stderr.read().decode(errors='replace').strip()}")
        if time.monotonic() > deadline:
            raise RestoreError("qemu-nbd didn't start within 30 s")
        time.sleep(0.02)


def _run(args: list[str]) -> None:
    result = subprocess.run(args, capture_output=True, text=True)
    if result.returncode != 0:
        raise RestoreError(f"{args[0]} failed: {result.stderr.strip()}")
