"""Restore points: one VM at one moment, as a manifest in a repository."""

from __future__ import annotations

from django.db import models
from django.db.models import Case, F, OuterRef, Q, Subquery, When
from django.db.models.functions import Coalesce
from django.urls import reverse
from django.utils import timezone

from jobs.choices import BackupType, RestorePointState
from jobs.models.replaced_vms import ReplacedVm, current_vm_engine_id
from vbrsite.times import stamp


class RestorePointQuerySet(models.QuerySet):
    """Restore points found by the VM they restore, across in-place restores."""

    def of_vm(self, engine_id: str, manager_id: int | None) -> RestorePointQuerySet:
        """The restore points of the VM that has or had ``engine_id`` on the manager, before and
        after in-place restores."""
        return self.of_vm_key(current_vm_engine_id(engine_id, manager_id))

    def of_vm_key(self, vm_key: str) -> RestorePointQuerySet:
        """The restore points whose ``vm_key`` (see ``with_vm_key``) is this VM's id now."""
        earlier = ReplacedVm.objects.filter(engine_id=vm_key).values("old_engine_id")
        # The index on vm_engine_id narrows; the key decides (the links are per manager).
        return (self.filter(Q(vm_engine_id=vm_key) | Q(vm_engine_id__in=earlier))
                .with_vm_key().filter(vm_key=vm_key))

    def with_vm_key(self) -> RestorePointQuerySet:
        """Annotated with ``vm_key``: the engine id the restore point's VM has now on its manager
        (a VM that left the inventory with its manager follows the links whose manager went too)."""
        links = ReplacedVm.objects.settled().filter(old_engine_id=OuterRef("vm_engine_id"))
        own = links.filter(manager_id=OuterRef("vm__manager_id")).values("engine_id")[:1]
        orphaned = links.filter(manager__isnull=True).values("engine_id")[:1]
        now = Case(When(vm__manager_id__isnull=True, then=Subquery(orphaned)), default=Subquery(own))
        return self.annotate(vm_key=Coalesce(now, F("vm_engine_id")))


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
