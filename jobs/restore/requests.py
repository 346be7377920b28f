"""What a restore is asked to do, as the wizard and the commands give it and Session.options keeps it.

Targets (cluster, storage domains, VM, vNIC profiles) are kept as the user gave
them, an engine id or a name; the driver resolves them against the engine when
the session runs, so a command works without a fresh inventory sync.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

from django.db import transaction

from jobs.choices import SessionKind
from jobs.models import RestorePoint, Session
from jobs.restore.points import RestoreError, find_disk
from vbrsite.times import stamp

VM = "vm"
DISKS = "disks"
KINDS = (VM, DISKS)
DISK_FORMATS = ("", "cow", "raw")
ALLOCATIONS = ("", "thin", "preallocated")


@dataclass
class RestoreRequest:
    """One restore: an entire VM (``kind`` "vm") or some of its disks (``kind`` "disks").

    VM: ``name`` ("" = the original name), ``cluster`` ("" = the original's),
    ``storage_domain`` for every disk or ``disk_storage_domains`` per source disk
    ("" = where the original disk was), ``networks`` maps source network names
    to vNIC profiles ("" = leave the NIC unplugged), ``new_macs``, ``power_on``,
    ``replace`` (stop and replace the original VM once every disk is restored).
    Disks: ``disks`` (source disk ids), on ``storage_domain`` ("" = where each
    original disk was), attached to ``vm`` or floating. ``disk_format`` "" keeps each disk's format, else cow/raw;
    ``allocation`` "" keeps each disk's, else thin/preallocated (raw disks; qcow2 is always thin).
    """

    point: int
    kind: str = VM
    name: str = ""
    cluster: str = ""
    storage_domain: str = ""
    disk_storage_domains: dict[str, str] = field(default_factory=dict)
    networks: dict[str, str] = field(default_factory=dict)
    new_macs: bool = True
    power_on: bool = False
    replace: bool = False
    disks: list[str] = field(default_factory=list)
    vm: str = ""
    disk_format: str = ""
    allocation: str = ""
    manager: int | None = None

    def validate(self, point: RestorePoint) -> None:
        """RestoreError saying what to change when the request can't be carried out."""
        if self.kind not in KINDS:
            raise RestoreError(f"unknown kind of restore {self.kind!r}: use vm or disks")
        if self.disk_format not in DISK_FORMATS:
            raise RestoreError(f"unknown disk format {self.disk_format!r}: use cow or raw")
        if self.allocation not in ALLOCATIONS:
            raise RestoreError(f"unknown allocation {self.allocation!r}: use thin or preallocated")
        if point.state != "ok":
            raise RestoreError(f"restore point {point.pk} is {point.state}: verify the repository, "
                               "or choose another restore point")
        if self.kind == DISKS:
            if not self.disks:
                raise RestoreError("choose at least one disk to restore")
            self.disks = [find_disk(point, d)["id"] for d in self.disks]
            if self.replace or self.power_on:
                raise RestoreError("--replace and --power-on apply to an entire VM restore")
        if self.kind == VM and self.replace and self.name and self.name != point.vm_name:
            raise RestoreError(f"replacing the original VM keeps its name {point.vm_name!r}: "
                               "leave out --name, or restore beside it without --replace")
        if self.manager_of(point) is None:
            raise RestoreError(f"restore point {point.pk} doesn't know its manager (its VM is not "
                               "in the inventory): sync the inventory of its manager first")

    def manager_of(self, point: RestorePoint):
        """The manager to restore into: the one given, else the VM's."""
        from inventory.models import Manager

        if self.manager:
            return Manager.objects.filter(pk=self.manager).first()
        return point.vm.manager if point.vm_id else None

    def to_options(self) -> dict:
        return {"restore": asdict(self)}

    @classmethod
    def from_options(cls, options: dict) -> RestoreRequest:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in options["restore"].items() if k in known})

    def describe(self, point: RestorePoint) -> str:
        """The session's name: what is restored, from when, to where."""
        when = stamp(point.time)
        if self.kind == DISKS:
            names = [find_disk(point, d).get("name") or d for d in self.disks]
            target = f" to VM {self.vm}" if self.vm else ""
            return f"Restore of {', '.join(names)} ({point.vm_name}, {when}){target}"
        if self.replace:
            return f"Restore of {point.vm_name} ({when}) in place"
        return f"Restore of {point.vm_name} ({when}) as {self.name or point.vm_name}"


def submit_restore(request: RestoreRequest, *, user=None) -> Session:
    """Check the request, record a restore session and send it to the control runner."""
    from jobs.restore.points import get_point

    point = get_point(request.point)
    request.validate(point)
    with transaction.atomic():
        session = Session.objects.create(kind=SessionKind.RESTORE, name=request.describe(point)[:200],
                                         options=request.to_options(),
                                         created_by=user if user and user.is_authenticated else None)
        session.enqueue()
    return session
