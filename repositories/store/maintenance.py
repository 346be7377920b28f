"""Verification and garbage collection of a chunk store.

Both report progress through a callback ``progress(done, total, message)`` so
the data mover can publish it to a client that polls.
"""

import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from repositories.store.chunks import verify_chunk
from repositories.store.errors import ChunkError, ManifestError, NotFound, RepositoryKeyError
from repositories.store.store import ChunkStore, chunk_name

Progress = Callable[[int, int, str], None]
SWEEP_BATCH = 256


def _no_progress(done: int, total: int, message: str) -> None:
    pass


@dataclass
class VerifyReport:
    """What verification found: missing and corrupt chunks, and the restore points they break."""

    manifests: int = 0
    chunks_checked: int = 0
    bytes_read: int = 0
    content_checked: bool = True
    missing: list[str] = field(default_factory=list)
    corrupt: dict[str, str] = field(default_factory=dict)
    damaged_manifests: dict[str, str] = field(default_factory=dict)
    affected_manifests: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.missing or self.corrupt or self.damaged_manifests)

    def to_dict(self) -> dict:
        return {**asdict(self), "ok": self.ok}


def verify(store: ChunkStore, progress: Progress = _no_progress) -> VerifyReport:
    """Re-read every chunk any manifest references and check it against its name.

    With the repository key (or in an unencrypted repository) each chunk is
    decrypted, decompressed and hashed; without it, its framing and checksum
    are checked.
    """
    report = VerifyReport(content_checked=not store.encrypted or store.key is not None)
    users: dict[str, list[str]] = defaultdict(list)
    for manifest_id in store.manifest_ids():
        report.manifests += 1
        try:
            manifest = store.get_manifest(manifest_id)
        except NotFound:
            report.manifests -= 1
            continue
        except ManifestError as exc:
            report.damaged_manifests[manifest_id] = str(exc)
            continue
        for digest in manifest.digests():
            users[digest].append(manifest_id)
    total = len(users)
    affected: set[str] = set(report.damaged_manifests)
    for done, digest in enumerate(sorted(users), 1):
        try:
            blob = store.get_chunk(digest)
            report.bytes_read += len(blob)
            verify_chunk(digest, blob, store.key)
        except NotFound:
            report.missing.append(digest)
            affected.update(users[digest])
        except (ChunkError, RepositoryKeyError) as exc:
            report.corrupt[digest] = str(exc)
            affected.update(users[digest])
        report.chunks_checked = done
        if done % 64 == 0 or done == total:
            progress(done, total, f"checked {done} of {total} chunks")
    report.affected_manifests = sorted(affected)
    return report


@dataclass
class GarbageReport:
    """What garbage collection found and removed."""

    referenced: int = 0
    chunks_seen: int = 0
    deleted: int = 0
    bytes_freed: int = 0
    kept_young: int = 0
    temporary_removed: int = 0
    leases_open: int = 0
    dry_run: bool = False

    def to_dict(self) -> dict:
        return asdict(self)


def collect_garbage(store: ChunkStore, grace_seconds: float = 6 * 3600, dry_run: bool = False,
                    progress: Progress = _no_progress) -> GarbageReport:
    """Mark every chunk a manifest references, then sweep the others that are old enough.

    A chunk is spared when it is younger than the grace period or than the
    oldest open lease (a backup in progress may not have written its manifest
    yet). Dedup hits touch chunks and the sweep re-checks each chunk's time
    under the repository's exclusive lock, so a chunk a running backup relies
    on is never removed. A damaged manifest stops the collection: its chunks
    can't be told from garbage.
    """
    report = GarbageReport(dry_run=dry_run)
    # Time and leases before the mark: a backup that writes its manifest (touching its
    # chunks) and closes its lease while the manifests are read keeps its chunks young.
    leases = store.leases()
    report.leases_open = len(leases)
    cutoff = min([time.time() - grace_seconds] + [lease["created"] - 60 for lease in leases])
    referenced: set[str] = set()
    for manifest in store.manifests():
        referenced |= manifest.digests()
    report.referenced = len(referenced)
    candidates = []
    for info in store.chunks():
        report.chunks_seen += 1
        digest = info.name[-64:]
        if digest in referenced:
            continue
        if info.mtime >= cutoff:
            report.kept_young += 1
        else:
            candidates.append(digest)
    progress(0, len(candidates), f"{len(candidates)} unreferenced chunks to remove")
    for start in range(0, len(candidates), SWEEP_BATCH):
        _sweep(store, candidates[start:start + SWEEP_BATCH], cutoff, dry_run, report)
        done = min(start + SWEEP_BATCH, len(candidates))
        progress(done, len(candidates), f"removed {report.deleted} of {len(candidates)} chunks")
    if not dry_run:
        report.temporary_removed = store.remove_stale_temporary(max(grace_seconds, 3600))
        for lease in store.leases(include_expired=True):
            if lease["expires"] <= time.time():
                store.backend.delete(f"leases/{lease['id']}.json")
    return report


def _sweep(store: ChunkStore, digests: list[str], cutoff: float, dry_run: bool,
           report: GarbageReport) -> None:
    with store.backend.lock(exclusive=True):
        for digest in digests:
            name = chunk_name(digest)
            info = store.backend.stat(name)
            if info is None:
                continue
            if info.mtime >= cutoff:
                report.kept_young += 1  # touched by a backup since the mark
                continue
            if dry_run or store.backend.delete(name):
                report.deleted += 1
                report.bytes_freed += info.size
