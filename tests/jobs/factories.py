"""Rows for page and command tests that need no engine: a manager, clusters, VMs, a repository, jobs."""

from django.utils import timezone

from inventory.models import VM, Cluster, Disk, Manager
from jobs.choices import SessionKind, SessionState
from jobs.models import BackupJob, ReplacedVm, RestorePoint, Session
from repositories.models import Repository


def inventory(vm_names=("web1", "db1"), tags=("production",), manager="engine1"):
    """A manager with one cluster and VMs ``vm-0``, ``vm-1``… (the same ids on every manager, as
    engines sharing a replicated storage domain have them)."""
    manager = Manager.objects.create(name=manager, url=f"https://{manager}.example/ovirt-engine/api")
    cluster = Cluster.objects.create(manager=manager, engine_id="c1", name="Production")
    vms = []
    for index, name in enumerate(vm_names):
        vm = VM.objects.create(manager=manager, engine_id=f"vm-{index}", name=name, cluster=cluster,
                               tags=list(tags) if index == 0 else [], status="up")
        Disk.objects.create(manager=manager, engine_id=f"disk-{index}", name=f"{name}_os", vm=vm,
                            format="cow", provisioned_size=10 * 2**30)
        vms.append(vm)
    return manager, cluster, vms


def repository(name="repo1"):
    return Repository.objects.create(name=name, path="/srv/repo1", datamover_url="http://127.0.0.1:1")


def job(name="nightly", vms=(), **fields):
    repo = fields.pop("repository", None) or Repository.objects.first() or repository()
    job = BackupJob.objects.create(name=name, repository=repo, **fields)
    job.vms.set(vms)
    return job


def restore_point(vm, repo, when, **fields):
    defaults = {"vm_engine_id": vm.engine_id, "vm_name": vm.name, "manifest_id": f"rp-{vm.pk}-{when:%s}",
                "disks": [{"id": "disk-0", "name": "web1_os", "size": 10 * 2**30}], "time": when}
    return RestorePoint.objects.create(vm=vm, repository=repo, **{**defaults, **fields})


def restored_in_place(vm, new_engine_id="vm-9", *, synced=True, state=SessionState.SUCCESS):
    """What an in-place restore of ``vm`` leaves: the original removed, the link to the id the
    engine gave the re-created VM (on the VM's manager), and (once the inventory has synced)
    that VM's row. ``state``: the restore session's (running: it is still finishing the VM)."""
    restore = Session.objects.create(name=f"Restore of {vm.name}", kind=SessionKind.RESTORE, state=state)
    VM.objects.filter(pk=vm.pk).update(removed=True, removed_at=timezone.now())
    ReplacedVm.record(vm.manager_id, vm.engine_id, new_engine_id, vm_name=vm.name, session=restore)
    if not synced:
        return None
    return VM.objects.create(manager=vm.manager, engine_id=new_engine_id, name=vm.name, cluster=vm.cluster)
