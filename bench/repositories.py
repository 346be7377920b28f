"""Repository figures: a 4 GiB VM-like disk stored through the client into a data mover.

The disk is a sparse file (about 60% allocated; allocated blocks half text-like,
half random) read the way a worker reads it: 4 MiB blocks, zero blocks skipped,
hashed, digests asked in batches, missing chunks compressed and sent from
several threads over keep-alive connections to a data mover (gunicorn) on
loopback. The second run sends the same disk again: every chunk is present.
"""

import os
import random
import shutil
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench.report import stopwatch
from bench.support import running_datamover
from repositories.datamover.client import DataMoverClient
from repositories.store import (
    BLOCK_SIZE,
    DiskIndex,
    block_digest,
    build_manifest,
    encode_chunk,
    is_zero,
)

DISK_SIZE = 4 * 1024**3
ALLOCATED = 0.6
THREADS = 4
RUN = 4  # blocks a thread reads before asking which are missing: bounds memory
MiB = 1024**2


def make_disk(path: Path, seed: int = 7) -> int:
    """Write the sparse VM-like disk; returns the allocated bytes."""
    rng = random.Random(seed)
    allocated = 0
    with open(path, "wb") as f:
        f.truncate(DISK_SIZE)
        for index in range(DISK_SIZE // BLOCK_SIZE):
            if rng.random() >= ALLOCATED:
                continue
            if rng.random() < 0.5:
                block = rng.randbytes(BLOCK_SIZE)
            else:
                line = f"{index:08d} log line of a guest file system, compressible {rng.random()}\n"
                block = (line.encode() * (BLOCK_SIZE // len(line) + 1))[:BLOCK_SIZE]
            os.pwrite(f.fileno(), block, index * BLOCK_SIZE)
            allocated += BLOCK_SIZE
    return allocated


def back_up(client: DataMoverClient, path: Path, manifest_id: str) -> dict:
    """Store the disk like a worker; returns bytes read and sent."""
    disk = DiskIndex(id="disk-1", size=DISK_SIZE)
    lock = threading.Lock()
    figures = {"read": 0, "sent": 0}
    fd = os.open(path, os.O_RDONLY)

    def run(first: int) -> None:
        blocks = {}
        for index in range(first, min(first + RUN, len(disk.blocks))):
            block = os.pread(fd, BLOCK_SIZE, index * BLOCK_SIZE)
            if is_zero(block):
                continue
            digest = block_digest(block)
            disk.blocks[index] = digest
            blocks[digest] = block
        sent = 0
        for digest in client.missing(list(blocks)) if blocks else []:
            blob = encode_chunk(blocks[digest])
            client.put_chunk(digest, blob)
            sent += len(blob)
        with lock:
            figures["read"] += sum(len(b) for b in blocks.values())
            figures["sent"] += sent

    try:
        with ThreadPoolExecutor(THREADS) as pool:
            list(pool.map(run, range(0, len(disk.blocks), RUN)))
    finally:
        os.close(fd)
    client.put_manifest(build_manifest(manifest_id, "bench-vm", [disk], vm_name="bench"))
    return figures


def _reset_peak_memory() -> None:
    # Linux: writing 5 resets the peak resident set size (VmHWM) of this process.
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def _peak_memory_mib(pid: int | str = "self") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _datamover_peak_mib(master_pid: int) -> float:
    """The largest peak RSS among the data mover's gunicorn processes."""
    pids = [master_pid]
    children = Path(f"/proc/{master_pid}/task/{master_pid}/children")
    if children.exists():
        pids += [int(p) for p in children.read_text().split()]
    return max(_peak_memory_mib(pid) for pid in pids)


def run(report) -> None:
    work = Path(tempfile.mkdtemp(prefix="bench-repositories-", dir="/var/tmp"))
    try:
        disk = work / "disk.raw"
        allocated = make_disk(disk)
        with running_datamover(work) as datamover, \
                DataMoverClient(datamover.url, datamover.token, pool_size=THREADS) as client:
            for name, manifest_id in (("full, new chunks", "rp-1"), ("again, all chunks present", "rp-2")):
                _reset_peak_memory()
                with stopwatch() as took:
                    figures = back_up(client, disk, manifest_id)
                stats = client.stats(fresh=True)
                report.row(f"repository: 4 GiB disk ({allocated // MiB} MiB allocated), {name}",
                           seconds=took["seconds"], mb_per_s=figures["read"] / took["seconds"] / 1e6,
                           sent_bytes=figures["sent"], stored_bytes=stats["used"],
                           peak_memory_mib=_peak_memory_mib(),
                           datamover_peak_mib=_datamover_peak_mib(datamover.process.pid))
    finally:
        shutil.rmtree(work, ignore_errors=True)
