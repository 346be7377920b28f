"""Finding the restore point and the disk a command or a page names."""

from __future__ import annotations

import logging
from contextlib import contextmanager, nullcontext

from jobs.models import RestorePoint
from repositories.store import DiskIndex, Manifest

log = logging.getLogger(__name__)


class RestoreError(Exception):
    """A restore can't be done as asked; the message says what to do."""


def get_point(value: object) -> RestorePoint:
    """The restore point with this id (the ``id`` of ``list_restore_points --json``)."""
    try:
        pk = int(str(value))
    except ValueError:
        raise RestoreError(f"{value!r} is not a restore point id: use the id that "
                           "`list_restore_points --json` gives") from None
    point = (RestorePoint.objects.select_related("repository", "vm", "vm__manager")
             .defer("vm__manager__password").filter(pk=pk).first())
    if point is None:
        raise RestoreError(f"there is no restore point {pk}: see `list_restore_points`")
    return point


def find_disk(point: RestorePoint, value: str) -> dict:
    """The restore point's disk whose engine id or name is ``value``."""
    by_id = [d for d in point.disks if d.get("id") == value]
    by_name = [d for d in point.disks if d.get("name") == value]
    matches = by_id or by_name
    if len(matches) == 1:
        return matches[0]
    names = ", ".join(f"{d.get('name') or '?'} ({d['id']})" for d in point.disks) or "none"
    if not matches:
        raise RestoreError(f"restore point {point.pk} has no disk {value!r}; its disks: {names}")
    raise RestoreError(f"restore point {point.pk} has several disks named {value!r}: "
                       f"give the disk's id ({names})")


@contextmanager
def held(point: RestorePoint, label: str, ttl: float = 24 * 3600):
    """Keep the restore point from being deleted while it is read (a lease on its manifest).

    A repository that can't take the lease (full, read-only) still serves the read:
    a full repository is when restores matter most. One that can't be reached fails it.
    """
    from repositories.datamover.client import DataMoverError, Unreachable
    from repositories.services import RepositoryLease

    try:
        lease = RepositoryLease.open(point.repository, label, [point.manifest_id], ttl=ttl)
    except Unreachable as exc:
        raise RestoreError(f"repository {point.repository.name} can't be reached: {exc}") from None
    except DataMoverError as exc:
        log.warning("reading restore point %s without a lease (retention may delete it meanwhile): %s",
                    point.pk, exc)
        lease = nullcontext()
    with lease:
        yield


def load_manifest(point: RestorePoint, client=None) -> Manifest:
    """The restore point's manifest, read through the repository's data mover."""
    from repositories.datamover.client import DataMoverError

    try:
        if client is not None:
            return client.get_manifest(point.manifest_id)
        with point.repository.client() as own:
            return own.get_manifest(point.manifest_id)
    except DataMoverError as exc:
        raise RestoreError(f"the manifest of restore point {point.pk} can't be read from "
                           f"repository {point.repository.name}: {exc}") from None


def manifest_disk(manifest: Manifest, disk_id: str) -> DiskIndex:
    """One disk's index in the manifest; RestoreError when it isn't there."""
    for disk in manifest.disks:
        if disk.id == disk_id:
            return disk
    raise RestoreError(f"the manifest {manifest.id} has no disk {disk_id}: the restore point "
                       "record and its repository disagree; verify the repository")
