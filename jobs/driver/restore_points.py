"""The restore point of a VM: its manifest written last (once its data is stored), then its row."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from jobs.choices import BackupType, SessionState
from jobs.models import RestorePoint, Session
from repositories.datamover.client import DataMoverError, NotFound
from repositories.store import BLOCK_SIZE, DiskIndex, Manifest, build_manifest
from repositories.store.errors import ManifestError, StoreError
from repositories.store.stash import unstash_index


def manifest_id_for(session: Session, vm) -> str:
    """A readable, unique manifest id: time, session and VM."""
    stamp = timezone.now().strftime("%Y%m%dT%H%M%S")
    return f"rp-{stamp}-s{session.pk}-{vm.engine_id[:36]}"


def disk_index_of(work, checkpoint_id: str | None, client=None, key=None) -> DiskIndex:
    """The disk's complete block index from its worker's result (read from the repository
    through ``client`` when the worker stored it there: a large disk's)."""
    result = work.task.result or {}
    try:
        raw = unstash_index(client, key, result)
    except (StoreError, DataMoverError, ValueError) as exc:
        raise ManifestError(f"the index of disk {work.disk.name} can't be read back from the "
                            f"repository: {exc}") from None
    try:
        size = int(raw.get("size", result.get("size", 0)))
        block_size = int(raw.get("block_size", BLOCK_SIZE))
    except (TypeError, ValueError) as exc:
        raise ManifestError(f"the worker returned no usable index for disk {work.disk.name}: {exc}") from None
    blocks = raw.get("blocks")
    if not isinstance(blocks, list):  # never an all-zero restore point for a missing index
        raise ManifestError(f"the worker returned no block index for disk {work.disk.name}")
    index = DiskIndex(id=work.disk.id, size=size, name=work.disk.name,
                      format=work.disk.format or raw.get("format", "raw"), checkpoint_id=checkpoint_id,
                      block_size=block_size, blocks=list(blocks))
    try:
        index.check()
    except ManifestError as exc:
        raise ManifestError(f"the worker's index of disk {work.disk.name} is unusable: {exc}") from None
    return index


def manifest_timeout(manifest) -> float:
    """Seconds to allow for writing a manifest: the data mover touches every chunk it
    references first, one file each (a synchronous round trip each on NFS)."""
    return 60.0 + len(manifest.digests()) / 1000


def write_manifest(*, session: Session, vm, repository, works: list, ovf: str, checkpoint_id: str | None,
                   base: RestorePoint | None, incremental: bool, started) -> Manifest:
    """Write the VM's manifest through the data mover (the restore point's row comes after)."""
    key = repository.repository_key()
    with repository.client() as client:
        indexes = [disk_index_of(w, checkpoint_id, client, key) for w in works]
    figures = {k: sum(w.figures.get(k, 0) for w in works)
               for k in ("bytes_read", "bytes_sent", "bytes_stored", "zero_bytes")}
    figures["seconds"] = round((timezone.now() - started).total_seconds(), 3)
    manifest = build_manifest(
        manifest_id_for(session, vm), vm.engine_id, indexes, vm_name=vm.name, ovf=ovf,
        key=key, parent=base.manifest_id if incremental and base else None,
        figures=figures, labels={"job": session.job.name if session.job else "", "session": str(session.pk)},
    )
    with repository.client(timeout=manifest_timeout(manifest)) as client:
        client.put_manifest(manifest)
    return manifest


class SessionEnded(Exception):
    """The session ended while its driver finished a VM: reconcile took the driver for dead."""


def record_restore_point(manifest: Manifest, *, session: Session, vm, repository, works: list,
                         checkpoint_id: str | None, base: RestorePoint | None, incremental: bool) -> RestorePoint:
    """The row of a restore point whose manifest is written; SessionEnded when the session is
    no longer running.

    Reconcile deletes the manifests a session it failed wrote but never recorded: the
    session's row stays locked from this check to the insert, so either reconcile sees the
    restore point or the driver sees the session failed, never neither.
    """
    figures = manifest.figures
    with transaction.atomic():
        running = Session.objects.select_for_update().filter(pk=session.pk, state=SessionState.RUNNING)
        if not list(running.values_list("pk", flat=True)):
            raise SessionEnded(f"session {session.pk} was ended meanwhile (its heartbeat had stalled)")
        return RestorePoint.objects.create(
            vm=vm, vm_engine_id=vm.engine_id, vm_name=vm.name, repository=repository, job=session.job,
            session=session, parent=base if incremental else None, time=manifest.created,
            type=BackupType.INCREMENTAL if incremental else BackupType.FULL,
            checkpoint_id=checkpoint_id or "", manifest_id=manifest.id,
            disks=[{"id": w.disk.id, "name": w.disk.name, "size": w.disk.provisioned_size,
                    "format": w.disk.format, "sparse": w.disk.sparse, "mode": w.mode,
                    "interface": w.interface, "bootable": w.bootable,
                    **{k: w.figures.get(k, 0) for k in ("bytes_read", "bytes_sent", "bytes_stored")}}
                   for w in works],
            size=sum(w.disk.provisioned_size for w in works), bytes_read=figures["bytes_read"],
            bytes_sent=figures["bytes_sent"], bytes_stored=figures["bytes_stored"], duration=figures["seconds"],
        )


def discard_manifest(repository, manifest_id: str) -> str:
    """Delete a manifest written for a restore point that is not recorded after all; what went
    wrong, or "" (gone already counts as done)."""
    try:
        with repository.client() as client:
            client.delete_manifest(manifest_id)
    except NotFound:
        pass
    except DataMoverError as exc:
        return f"the manifest {manifest_id} written for it could not be deleted: {exc}"
    return ""
