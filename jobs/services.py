"""What pages and commands do with jobs and sessions: start, cancel, look up."""

from __future__ import annotations

from django.db import transaction
from django.db.models import Q

from jobs.choices import ACTIVE_STATES, SessionKind, Trigger
from jobs.models import BackupJob, Session


class LookupError_(ValueError):
    """A name given by a user matches nothing (or too much); the message says what to do."""


class VmNotInInventory(LookupError_):
    """No VM of the inventory has the name or engine id given (ambiguous names are LookupError_)."""


def find_vm(text: str):
    """A VM of the inventory by name or engine id (removed VMs included as a last resort)."""
    from inventory.models import VM

    matches = list(VM.objects.filter(engine_id=text).select_related("manager", "cluster").defer("manager__password"))
    if not matches:
        matches = list(VM.objects.filter(name=text, removed=False).select_related("manager", "cluster").defer("manager__password"))
    if not matches:
        matches = list(VM.objects.filter(name=text).select_related("manager", "cluster").defer("manager__password"))
    if not matches:
        raise VmNotInInventory(f"No VM named {text!r} in the inventory: check the name with `list_vms`, "
                               "or sync the manager with `sync_inventory`.")
    if len(matches) > 1:
        managers = ", ".join(vm.manager.name for vm in matches)
        raise LookupError_(f"{len(matches)} VMs are named {text!r} (managers {managers}): give the VM's engine id.")
    return matches[0]


def vm_of_restore_points(text: str) -> str:
    """The engine id now of the VM whose restore points recorded the name or engine id ``text``.

    For VMs the inventory no longer has at all (their manager was removed): restore
    points keep the VM's name and id as they were when taken.
    """
    from jobs.models import RestorePoint

    keys = set(RestorePoint.objects.with_vm_key().filter(Q(vm_name=text) | Q(vm_engine_id=text) | Q(vm_key=text))
               .values_list("vm_key", flat=True))
    if not keys:
        raise LookupError_(f"No VM named {text!r} in the inventory, and no restore point of a VM with that "
                           "name or engine id: check it with `list_restore_points` (every VM's) or `list_vms`.")
    if len(keys) > 1:
        raise LookupError_(f"Restore points of {len(keys)} VMs named {text!r}: give the VM's engine id "
                           f"({', '.join(sorted(keys))}).")
    return keys.pop()


def find_repository(name: str):
    from repositories.models import Repository

    repository = Repository.objects.filter(name=name).first()
    if repository is None:
        known = ", ".join(Repository.objects.values_list("name", flat=True)) or "none yet"
        raise LookupError_(f"No repository named {name!r} (known: {known}). Add one with add_repository.")
    return repository


def find_job(name: str) -> BackupJob:
    job = BackupJob.objects.filter(name=name).first()
    if job is None:
        known = ", ".join(BackupJob.objects.values_list("name", flat=True)) or "none yet"
        raise LookupError_(f"No job named {name!r} (known: {known}). Create one with create_job.")
    return job


def find_cluster(name: str):
    from inventory.models import Cluster

    matches = list(Cluster.objects.filter(name=name, removed=False))
    if len(matches) != 1:
        raise LookupError_(f"{'No' if not matches else len(matches)} cluster(s) named {name!r} in the "
                           "inventory: sync the manager, or pick a unique name.")
    return matches[0]


def run_job(job: BackupJob, *, full: bool = False, user=None, trigger: str = Trigger.MANUAL) -> Session:
    """Start a session of the job now (queued for the control runner once committed)."""
    with transaction.atomic():
        session = Session.objects.create(job=job, name=job.name, full=full, trigger=trigger,
                                         created_by=user if user and user.is_authenticated else None)
        session.log(f"{'Full backup' if full else 'Backup'} queued"
                    f"{' by ' + user.get_username() if user and user.is_authenticated else ''}.")
        session.enqueue()
    return session


def backup_vms(vms: list, repository, *, full: bool = False, user=None) -> Session:
    """Back up VMs outside any job (no schedule, no retention)."""
    name = ", ".join(vm.name for vm in vms[:3]) + (" …" if len(vms) > 3 else "")
    with transaction.atomic():
        session = Session.objects.create(
            kind=SessionKind.BACKUP, name=f"Backup of {name}", full=full,
            options={"vm_ids": [vm.pk for vm in vms], "repository_id": repository.pk},
            created_by=user if user and user.is_authenticated else None)
        session.log(f"Backup of {name} to repository {repository.name} queued.")
        session.enqueue()
    return session


def running_session_of(job: BackupJob) -> Session | None:
    return job.sessions.filter(state__in=ACTIVE_STATES).first()
