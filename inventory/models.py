"""The oVirt engines the backup server protects ("managers") and a synced copy of what they manage.

Synced rows are keyed by (manager, engine id). Rows that vanish from the engine
are marked removed, never deleted: restore points keep pointing at their VM
and disks after those are gone from the engine.
"""

from __future__ import annotations

from django.db import models
from django.urls import reverse
from django.utils import timezone

from inventory.choices import MANAGER_IDLE_STATES, DiskFormat, ManagerState, VmStatus
from vbrsite.secrets import EncryptedTextField, SecretError


class ManagerQuerySet(models.QuerySet):
    """Managers load without their password: it is decrypted only when used."""


class DeferredPasswordManager(models.Manager.from_queryset(ManagerQuerySet)):
    # Decrypting every password whenever managers are listed would be wasteful
    # and, after a key change, would break every page that lists them.
    def get_queryset(self):
        return super().get_queryset().defer("password")


class Manager(models.Model):
    """An oVirt engine registered with the backup server, reached through its REST API."""

    name = models.CharField(max_length=100, unique=True)
    # A CharField: URLField would refuse single-label engine host names ("https://engine/...").
    url = models.CharField("API URL", max_length=500,
                           help_text="e.g. https://engine.example.com/ovirt-engine/api")
    username = models.CharField(max_length=200, default="admin@internal")
    password = EncryptedTextField(blank=True)
    # When the read of the last stored sync began: an older read arriving later is dropped.
    inventory_read_at = models.DateTimeField(null=True, blank=True, editable=False)
    ca_certificate = models.TextField(
        "CA certificate (PEM)", blank=True,
        help_text="The engine's CA, from https://ENGINE/ovirt-engine/services/pki-resource"
                  "?resource=ca-certificate&format=X509-PEM-CA. Empty: the system's trust store.",
    )
    state = models.CharField(max_length=20, choices=ManagerState.choices, default=ManagerState.NEW)
    last_error = models.TextField(blank=True)
    last_sync = models.DateTimeField(null=True, blank=True)
    last_sync_seconds = models.FloatField(null=True, blank=True)
    sync_requested_at = models.DateTimeField(null=True, blank=True)
    product_name = models.CharField(max_length=200, blank=True)
    product_version = models.CharField(max_length=100, blank=True)
    created = models.DateTimeField(auto_now_add=True)

    objects = DeferredPasswordManager()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("inventory:manager_edit", args=[self.pk])

    @property
    def is_syncing(self) -> bool:
        return self.state not in MANAGER_IDLE_STATES

    def stored_password(self) -> str:
        """The decrypted password; AuthenticationFailed saying what to do if it can't be decrypted."""
        from plugin.errors import AuthenticationFailed

        try:
            return self.password
        except SecretError as exc:
            raise AuthenticationFailed(f"The stored password of manager {self.name} can't be used: {exc}") from None

    def credentials(self):
        """The facade's ManagerCredentials for this manager (see stored_password for failures)."""
        from plugin.engine import ManagerCredentials

        return ManagerCredentials(url=self.url, username=self.username, password=self.stored_password(),
                                  ca_pem=self.ca_certificate)


class EngineObject(models.Model):
    """Fields every synced object has: its manager, the engine's id and its name."""

    manager = models.ForeignKey(Manager, on_delete=models.CASCADE)
    engine_id = models.CharField(max_length=64)
    name = models.CharField(max_length=255)
    removed = models.BooleanField(default=False, help_text="Gone from the engine; kept for restore points.")
    removed_at = models.DateTimeField(null=True, blank=True)
    synced_at = models.DateTimeField(default=timezone.now)

    class Meta:
        abstract = True
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


def _keys(model_name: str) -> list:
    return [models.UniqueConstraint(fields=["manager", "engine_id"], name=f"{model_name}_unique_engine_id")]


class DataCenter(EngineObject):
    """A data center of a manager."""

    status = models.CharField(max_length=40, blank=True)
    description = models.TextField(blank=True)

    class Meta(EngineObject.Meta):
        constraints = _keys("datacenter")


class Cluster(EngineObject):
    """A cluster of hosts; workers are deployed per cluster."""

    data_center = models.ForeignKey(DataCenter, null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="clusters")
    cpu_architecture = models.CharField(max_length=40, blank=True)
    description = models.TextField(blank=True)

    class Meta(EngineObject.Meta):
        constraints = _keys("cluster")


class Host(EngineObject):
    """A hypervisor host."""

    cluster = models.ForeignKey(Cluster, null=True, blank=True, on_delete=models.SET_NULL,
                                related_name="hosts")
    address = models.CharField(max_length=255, blank=True)
    status = models.CharField(max_length=40, blank=True)

    class Meta(EngineObject.Meta):
        constraints = _keys("host")


class StorageDomain(EngineObject):
    """A storage domain; free and used space in bytes."""

    data_center = models.ForeignKey(DataCenter, null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="storage_domains")
    type = models.CharField(max_length=40, blank=True, help_text="data, iso, export, ...")
    storage_type = models.CharField(max_length=40, blank=True, help_text="nfs, iscsi, fcp, ...")
    status = models.CharField(max_length=40, blank=True)
    free = models.BigIntegerField(default=0)
    used = models.BigIntegerField(default=0)

    class Meta(EngineObject.Meta):
        constraints = _keys("storagedomain")


class Network(EngineObject):
    """A logical network of a data center."""

    data_center = models.ForeignKey(DataCenter, null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="networks")
    vlan_id = models.IntegerField(null=True, blank=True)
    description = models.TextField(blank=True)

    class Meta(EngineObject.Meta):
        constraints = _keys("network")


class VM(EngineObject):
    """A virtual machine of a manager; what backup jobs protect."""

    status = models.CharField(max_length=40, blank=True, choices=VmStatus.choices)
    description = models.TextField(blank=True)
    os_type = models.CharField("OS", max_length=100, blank=True)
    memory = models.BigIntegerField(default=0, help_text="bytes")
    cpus = models.PositiveIntegerField(default=0)
    tags = models.JSONField(default=list, blank=True)
    cluster = models.ForeignKey(Cluster, null=True, blank=True, on_delete=models.SET_NULL,
                                related_name="vms")
    host = models.ForeignKey(Host, null=True, blank=True, on_delete=models.SET_NULL,
                             related_name="vms")

    class Meta(EngineObject.Meta):
        verbose_name = "VM"
        constraints = _keys("vm")
        indexes = [models.Index(fields=["manager", "name"], name="vm_manager_name")]


class Disk(EngineObject):
    """A disk image; ``vm`` is the VM it is attached to (None for a floating disk)."""

    format = models.CharField(max_length=10, blank=True, choices=DiskFormat.choices)
    provisioned_size = models.BigIntegerField(default=0, help_text="virtual size, bytes")
    actual_size = models.BigIntegerField(default=0, help_text="allocated on storage, bytes")
    storage_domain = models.ForeignKey(StorageDomain, null=True, blank=True,
                                       on_delete=models.SET_NULL, related_name="disks")
    backup_incremental = models.BooleanField("incremental backup enabled", default=False)
    sparse = models.BooleanField(default=False)
    status = models.CharField(max_length=40, blank=True)
    interface = models.CharField(max_length=40, blank=True)
    bootable = models.BooleanField(default=False)
    vm = models.ForeignKey(VM, null=True, blank=True, on_delete=models.SET_NULL, related_name="disks")

    class Meta(EngineObject.Meta):
        constraints = _keys("disk")
