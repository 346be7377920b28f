"""Restore points: one VM at one moment, as a manifest in a repository."""

from __future__ import annotations

from django.db import models
from django.urls import reverse
from django.utils import timezone

from jobs.choices import BackupType, RestorePointState
from vbrsite.times import stamp


class RestorePoint(models.Model):
    """One VM at one moment, stored as a manifest (a synthetic full) in a repository.

    ``vm`` may be marked removed in the inventory: restore points outlive their
    VM. ``vm_engine_id`` and ``vm_name`` keep the identity even if the inventory
    row goes. ``disks`` lists the source disks: ``id`` (the engine's), ``name``,
    ``size``, ``format``, ``mode`` and the bytes read for it.
    ``checkpoint_id`` is the engine checkpoint the next incremental starts from.
    """

    vm = models.ForeignKey("inventory.VM", null=True, blank=True, on_delete=models.SET_NULL,
                           related_name="restore_points")
    vm_engine_id = models.CharField(max_length=64)
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
