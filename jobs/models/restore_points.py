"""Restore points: one VM at one moment, as a manifest in a repository."""

from __future__ import annotations

from django.db import models, transaction
from django.db.models import F, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.urls import reverse
from django.utils import timezone

from jobs.choices import BackupType, RestorePointState
from vbrsite.times import stamp


class ReplacedVm(models.Model):
    """A VM an in-place restore removed, and the engine id of the VM that took its place.

    An in-place restore re-creates the VM, and the engine gives it a new id; restore
    points keep the id their VM had when they were taken. This row says that the
    restore points of ``old_engine_id`` are the VM's now known as ``engine_id``.
    ``engine_id`` is always the latest id: recording a replacement moves the rows of
    the ids replaced before along, so one look-up resolves a VM replaced many times.
    """

    old_engine_id = models.CharField(max_length=64, unique=True)
    engine_id = models.CharField(max_length=64, db_index=True)
    vm_name = models.CharField(max_length=255)
    session = models.ForeignKey("jobs.Session", null=True, blank=True, on_delete=models.SET_NULL,
                                related_name="replaced_vms")
    time = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = "replaced VM"

    def __str__(self) -> str:
        return f"{self.vm_name}: {self.old_engine_id} replaced by {self.engine_id}"

    @classmethod
    def record(cls, old_engine_id: str, engine_id: str, *, vm_name: str, session=None) -> None:
        """Note that an in-place restore replaced the VM ``old_engine_id`` by ``engine_id``."""
        with transaction.atomic():
            cls.objects.filter(engine_id=old_engine_id).update(engine_id=engine_id)
            cls.objects.update_or_create(old_engine_id=old_engine_id, defaults={
                "engine_id": engine_id, "vm_name": vm_name, "session": session, "time": timezone.now()})


def current_vm_engine_id(engine_id: str) -> str:
    """The engine id the VM has now (an in-place restore gave it a new one), else ``engine_id``."""
    now = ReplacedVm.objects.filter(old_engine_id=engine_id).values_list("engine_id", flat=True).first()
    return now or engine_id


def vm_engine_ids(engine_id: str) -> list[str]:
    """Every engine id of the VM that has or had ``engine_id``: its id now first, then earlier ones."""
    now = current_vm_engine_id(engine_id)
    return [now, *ReplacedVm.objects.filter(engine_id=now).values_list("old_engine_id", flat=True)]


class RestorePointQuerySet(models.QuerySet):
    """Restore points found by the VM they restore, across in-place restores."""

    def of_vm(self, engine_id: str) -> RestorePointQuerySet:
        """The restore points of the VM that has or had ``engine_id``, before and after in-place restores."""
        return self.filter(vm_engine_id__in=vm_engine_ids(engine_id))

    def with_vm_key(self) -> RestorePointQuerySet:
        """Annotated with ``vm_key``: the engine id the restore point's VM has now."""
        now = ReplacedVm.objects.filter(old_engine_id=OuterRef("vm_engine_id")).values("engine_id")[:1]
        return self.annotate(vm_key=Coalesce(Subquery(now), F("vm_engine_id")))


class RestorePoint(models.Model):
    """One VM at one moment, stored as a manifest (a synthetic full) in a repository.

    ``vm`` may be marked removed in the inventory: restore points outlive their
    VM. ``vm_engine_id`` and ``vm_name`` keep the identity even if the inventory
    row goes: the VM's id and name when the restore point was taken (ReplacedVm
    leads from that id to the VM's id after an in-place restore). ``disks`` lists
    the source disks: ``id`` (the engine's), ``name``, ``size``, ``format``,
    ``mode`` and the bytes read for it.
    ``checkpoint_id`` is the engine checkpoint the next incremental starts from.
    """

    vm = models.ForeignKey("inventory.VM", null=True, blank=True, on_delete=models.SET_NULL,
                           related_name="restore_points")
    vm_engine_id = models.CharField(max_length=64, db_index=True)
    vm_name = models.CharField(max_length=255)
    repository = models.ForeignKey("repositories.Repository", on_delete=models.PROTECT,
                                   related_name="restore_points")
    job = models.ForeignKey("jobs.BackupJob", null=True, blank=True, on_delete=models.SET_NULL,
                            related_name="restore_points")
    session = models.ForeignKey("jobs.Session", null=True, blank=True, on_delete=models.SET_NULL,
                                related_name="restore_points")
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL,
                               related_name="children")
    time = models.DateTimeField(default=timezone.now, db_index=True)
    type = models.CharField(max_length=12, choices=BackupType.choices, default=BackupType.FULL)
    checkpoint_id = models.CharField(max_length=64, blank=True)
    manifest_id = models.CharField(max_length=128)
    disks = models.JSONField(default=list, blank=True)
    size = models.BigIntegerField(default=0, help_text="Provisioned size of all disks, bytes.")
    bytes_read = models.BigIntegerField(default=0)
    bytes_sent = models.BigIntegerField(default=0)
    bytes_stored = models.BigIntegerField(default=0)
    duration = models.FloatField(default=0, help_text="Seconds.")
    state = models.CharField(max_length=10, choices=RestorePointState.choices, default=RestorePointState.OK)

    objects = RestorePointQuerySet.as_manager()

    class Meta:
        ordering = ["time", "pk"]
        constraints = [models.UniqueConstraint(fields=["repository", "manifest_id"],
                                               name="restorepoint_unique_manifest")]

    def __str__(self) -> str:
        return f"{self.vm_name} {stamp(self.time)} ({self.type})"

    def get_absolute_url(self) -> str:
        return reverse("jobs:restore_point", args=[self.pk])

    def as_json(self) -> dict:
        """The form `list_restore_points --json` prints."""
        return {
            "id": self.pk,
            "vm": self.vm_name,
            "time": self.time.isoformat(),
            "type": self.type,
            "state": self.state,
            "repository": self.repository.name,
            "disks": [{"id": d["id"], "name": d.get("name", ""), "size": d.get("size", 0)}
                      for d in self.disks],
        }
