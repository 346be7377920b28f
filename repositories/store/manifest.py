"""Manifests: the complete index of a restore point, written last.

A manifest names every block of every disk of one VM at one moment: a chunk id,
None for a block of zeros, or a patched block (a chunk with changed ranges over
it, patches.py). Every restore point is therefore a synthetic full; an
incremental one starts from a copy of its parent's index (:func:`incremental_disk`)
and replaces the blocks that changed.
"""

import base64
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime

from repositories.store.chunks import BLOCK_SIZE, decode_chunk, encode_chunk
from repositories.store.errors import ManifestError, RepositoryKeyError
from repositories.store.keys import RepositoryKey, as_key
from repositories.store.patches import Entry, check_entry, entry_digests, is_patched

MANIFEST_FORMAT = "vbr-manifest"
# Version 2 adds patched blocks; a manifest without one is still written as version 1,
# which every reader understands.
MANIFEST_VERSION = 2
READABLE_VERSIONS = (1, 2)
MANIFEST_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def block_count(size: int, block_size: int = BLOCK_SIZE) -> int:
    """How many blocks cover a disk of this many bytes (the last one may be short)."""
    return (size + block_size - 1) // block_size


def block_length(size: int, index: int, block_size: int = BLOCK_SIZE) -> int:
    """The length of block ``index`` of a disk of ``size`` bytes."""
    return min(block_size, size - index * block_size)


def check_manifest_id(manifest_id: str) -> str:
    """Return the id if it is safe as a file name; ManifestError otherwise."""
    if not isinstance(manifest_id, str) or not MANIFEST_ID.match(manifest_id):
        raise ManifestError(
            f"bad manifest id {manifest_id!r}: use 1-128 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return manifest_id


@dataclass
class DiskIndex:
    """One disk of a restore point: its size, format and block index."""

    id: str
    size: int
    name: str = ""
    format: str = "raw"
    checkpoint_id: str | None = None
    block_size: int = BLOCK_SIZE
    # Per block: a chunk id, None for zeros, or a patched block (see patches.py).
    # None (not given): a disk of zero blocks. A list given is kept as it is, even empty, so
    # an index that went missing can't pass for a disk of zeros (check() refuses it).
    blocks: list[Entry] | None = None

    def __post_init__(self):
        if self.blocks is None:
            self.blocks = [None] * block_count(self.size, self.block_size)

    def set_block(self, index: int, entry: Entry) -> None:
        """Record the chunk id (None for zeros, or a patched block) of block ``index``."""
        if not 0 <= index < len(self.blocks):
            raise ManifestError(f"block {index} is outside disk {self.id} of {self.size} bytes")
        check_entry(entry, block_length(self.size, index, self.block_size),
                    f"block {index} of disk {self.id}")
        self.blocks[index] = entry

    def check(self) -> None:
        """ManifestError unless the index has one valid entry per block."""
        if self.size < 0 or self.block_size <= 0:
            raise ManifestError(f"disk {self.id} has a bad size or block size")
        if len(self.blocks) != block_count(self.size, self.block_size):
            raise ManifestError(
                f"disk {self.id} of {self.size} bytes needs {block_count(self.size, self.block_size)} "
                f"index entries, the manifest has {len(self.blocks)}"
            )
        for index, entry in enumerate(self.blocks):
            check_entry(entry, block_length(self.size, index, self.block_size),
                        f"block {index} of disk {self.id}")

    def digests(self) -> set[str]:
        """Every chunk id this disk needs."""
        return {digest for entry in self.blocks for digest in entry_digests(entry)}

    def patched_blocks(self) -> int:
        return sum(1 for entry in self.blocks if is_patched(entry))

    def allocated_bytes(self) -> int:
        """Bytes of the disk held in chunks (zero blocks excluded)."""
        return sum(block_length(self.size, i, self.block_size)
                   for i, entry in enumerate(self.blocks) if entry is not None)

    def to_dict(self) -> dict:
        return {"id": self.id, "name": self.name, "size": self.size, "format": self.format,
                "checkpoint_id": self.checkpoint_id, "block_size": self.block_size,
                "blocks": self.blocks}


@dataclass
class Manifest:
    """A restore point: the VM, its configuration (OVF) and every disk's index."""

    id: str
    vm_id: str
    vm_name: str = ""
    created: datetime = field(default_factory=lambda: datetime.now(UTC))
    type: str = "full"
    parent: str | None = None
    disks: list[DiskIndex] = field(default_factory=list)
    figures: dict = field(default_factory=dict)
    ovf: str = ""
    # The OVF of an encrypted repository, as a base64 chunk; see seal_ovf().
    sealed_ovf: str | None = None
    labels: dict = field(default_factory=dict)
    # Set by the data mover from the repository's immutability when it is written;
    # a later, shorter setting never shortens it.
    immutable_until: datetime | None = None

    def digests(self) -> set[str]:
        """Every chunk id this restore point needs."""
        return {digest for disk in self.disks for digest in disk.digests()}

    def disk(self, disk_id: str) -> DiskIndex:
        """The index of one disk by its id."""
        for disk in self.disks:
            if disk.id == disk_id:
                return disk
        raise ManifestError(f"restore point {self.id} has no disk {disk_id}")

    def size(self) -> int:
        """The provisioned size of all disks."""
        return sum(disk.size for disk in self.disks)

    def allocated_bytes(self) -> int:
        """Bytes of all disks held in chunks (what a full restore writes)."""
        return sum(disk.allocated_bytes() for disk in self.disks)

    def seal_ovf(self, ovf: str, key: RepositoryKey | bytes | None) -> None:
        """Keep the OVF, encrypted when the repository is (it names disks, networks, users)."""
        if as_key(key) is None:
            self.ovf, self.sealed_ovf = ovf, None
            return
        self.ovf = ""
        self.sealed_ovf = base64.b64encode(encode_chunk(ovf.encode(), key)).decode()

    def read_ovf(self, key: RepositoryKey | bytes | None = None) -> str:
        """The VM's OVF, decrypted with the key where it was sealed."""
        if self.sealed_ovf is None:
            return self.ovf
        if as_key(key) is None:
            raise RepositoryKeyError("the OVF of this restore point is encrypted: give the key")
        return decode_chunk(base64.b64decode(self.sealed_ovf), key).decode()

    def to_dict(self) -> dict:
        return {
            "format": MANIFEST_FORMAT, "id": self.id,
            "version": MANIFEST_VERSION if any(d.patched_blocks() for d in self.disks) else 1,
            "created": self.created.astimezone(UTC).isoformat(), "type": self.type,
            "parent": self.parent, "vm": {"id": self.vm_id, "name": self.vm_name},
            "ovf": self.ovf, "sealed_ovf": self.sealed_ovf, "labels": self.labels,
            "figures": self.figures, "disks": [disk.to_dict() for disk in self.disks],
            "immutable_until": _iso(self.immutable_until),
        }

    def summary(self) -> dict:
        """What a list of restore points shows, without the block indexes."""
        return {
            "id": self.id, "created": self.created.astimezone(UTC).isoformat(),
            "type": self.type, "parent": self.parent, "vm_id": self.vm_id,
            "vm_name": self.vm_name, "labels": self.labels, "figures": self.figures,
            "size": self.size(), "allocated": self.allocated_bytes(),
            "immutable_until": _iso(self.immutable_until),
            "disks": [{"id": d.id, "name": d.name, "size": d.size} for d in self.disks],
        }


def _iso(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).isoformat() if moment else None


def build_manifest(manifest_id: str, vm_id: str, disks: list[DiskIndex], *, vm_name: str = "",
                   ovf: str = "", key: RepositoryKey | bytes | None = None,
                   parent: str | None = None, figures: dict | None = None,
                   labels: dict | None = None, created: datetime | None = None) -> Manifest:
    """A new manifest; ``type`` is incremental when it has a parent."""
    manifest = Manifest(
        id=check_manifest_id(manifest_id), vm_id=vm_id, vm_name=vm_name,
        created=created or datetime.now(UTC), type="incremental" if parent else "full",
        parent=parent, disks=disks, figures=dict(figures or {}), labels=dict(labels or {}),
    )
    manifest.seal_ovf(ovf, key)
    return manifest


def incremental_disk(previous: DiskIndex, size: int | None = None,
                     changes: dict[int, Entry] | None = None,
                     checkpoint_id: str | None = None) -> DiskIndex:
    """A copy of the previous index with changed blocks replaced.

    When the disk grew, the new blocks start as zeros; when it shrank, blocks
    past the end are dropped. A last block whose length changed must be among the
    changes, read whole (the worker's plan does so: backup_plan.incremental_plan).
    """
    size = previous.size if size is None else size
    count = block_count(size, previous.block_size)
    blocks = (previous.blocks + [None] * count)[:count]
    disk = DiskIndex(id=previous.id, size=size, name=previous.name, format=previous.format,
                     checkpoint_id=checkpoint_id, block_size=previous.block_size, blocks=blocks)
    for index, digest in (changes or {}).items():
        disk.set_block(index, digest)
    return disk


def serialize_manifest(manifest: Manifest) -> bytes:
    """The stored form of a manifest: UTF-8 JSON with sorted keys."""
    return json.dumps(manifest.to_dict(), sort_keys=True, separators=(",", ":")).encode()


def _parse_disk(raw: dict) -> DiskIndex:
    disk = DiskIndex(id=str(raw["id"]), size=int(raw["size"]), name=raw.get("name", ""),
                     format=raw.get("format", "raw"), checkpoint_id=raw.get("checkpoint_id"),
                     block_size=int(raw.get("block_size", BLOCK_SIZE)), blocks=list(raw["blocks"]))
    disk.check()
    return disk


def parse_manifest(data: bytes | str | dict) -> Manifest:
    """A manifest from its stored form; ManifestError says what is wrong with it."""
    try:
        raw = data if isinstance(data, dict) else json.loads(data)
        if raw.get("format") != MANIFEST_FORMAT:
            raise ManifestError("not a manifest (format is not vbr-manifest)")
        if raw.get("version") not in READABLE_VERSIONS:
            raise ManifestError(f"manifest version {raw.get('version')} is not supported")
        manifest = Manifest(
            id=check_manifest_id(raw["id"]), vm_id=str(raw["vm"]["id"]),
            vm_name=raw["vm"].get("name", ""), created=datetime.fromisoformat(raw["created"]),
            type=raw.get("type", "full"), parent=raw.get("parent"),
            disks=[_parse_disk(d) for d in raw["disks"]], figures=raw.get("figures") or {},
            ovf=raw.get("ovf") or "", sealed_ovf=raw.get("sealed_ovf"),
            labels=raw.get("labels") or {},
            immutable_until=(datetime.fromisoformat(raw["immutable_until"])
                             if raw.get("immutable_until") else None),
        )
    except ManifestError:
        raise
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ManifestError(f"malformed manifest: {exc!r}") from None
    if raw.get("version") == 1 and any(d.patched_blocks() for d in manifest.disks):
        raise ManifestError("a version 1 manifest can't hold patched blocks")
    if manifest.created.tzinfo is None or (manifest.immutable_until
                                           and manifest.immutable_until.tzinfo is None):
        raise ManifestError("manifest times need a time zone")
    return manifest
