"""Writing restore points straight into a repository from disk images, for restore tests.

This is what a backup does, done directly: the image is read as the guest sees
it (through ``qemu-img convert`` to raw), cut into 4 MiB blocks, non-zero ones
stored as chunks, the manifest written last, and a RestorePoint row created.
"""

from __future__ import annotations

import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

from jobs.models import RestorePoint
from repositories.store import (
    BLOCK_SIZE,
    DiskIndex,
    block_digest,
    build_manifest,
    encode_chunk,
    is_zero,
)


@dataclass
class SourceDisk:
    """A disk to put into a restore point: its engine id and name, and its image now."""

    id: str
    name: str
    image: Path
    image_format: str = "raw"
    disk_format: str = "raw"


def qemu_format(fmt: str) -> str:
    """qemu's name of an engine disk format."""
    return "qcow2" if fmt in ("cow", "qcow2") else "raw"


def image_as_raw(image: Path, image_format: str, folder: Path) -> Path:
    """A raw copy of an image (sparse), as the guest sees it."""
    target = folder / f"{image.name}-{uuid.uuid4().hex[:8]}.raw"
    # -U: the simulator's qemu-nbd may hold the image open.
    subprocess.run(["qemu-img", "convert", "-U", "-f", qemu_format(image_format), "-O", "raw",
                    str(image), str(target)], check=True, capture_output=True)
    return target


def index_disk(client, source: SourceDisk, key, folder: Path) -> DiskIndex:
    """Chunk one image into the repository; returns its index."""
    raw = image_as_raw(source.image, source.image_format, folder)
    size = raw.stat().st_size
    disk = DiskIndex(id=source.id, size=size, name=source.name, format=source.disk_format)
    with open(raw, "rb") as f:
        for index in range(len(disk.blocks)):
            block = f.read(BLOCK_SIZE)
            if is_zero(block):
                continue
            digest = block_digest(block, key)
            disk.set_block(index, digest)
            if client.missing([digest]):
                client.put_chunk(digest, encode_chunk(block, key))
    raw.unlink()
    return disk


def write_restore_point(repository, *, vm_id: str, vm_name: str, disks: list[SourceDisk],
                        folder: Path, ovf: str = "", vm=None,
                        parent: RestorePoint | None = None) -> RestorePoint:
    """Store the images as one restore point of the VM and record it."""
    key = repository.repository_key()
    manifest_id = f"rp-{uuid.uuid4().hex}"
    with repository.client() as client:
        indexes = [index_disk(client, disk, key, folder) for disk in disks]
        manifest = build_manifest(manifest_id, vm_id, indexes, vm_name=vm_name, ovf=ovf, key=key,
                                  parent=parent.manifest_id if parent else None)
        client.put_manifest(manifest)
    return RestorePoint.objects.create(
        vm=vm, vm_engine_id=vm_id, vm_name=vm_name, repository=repository, parent=parent,
        type=manifest.type, manifest_id=manifest_id, size=manifest.size(),
        disks=[{"id": d.id, "name": d.name, "size": d.size, "format": d.format} for d in indexes],
    )
