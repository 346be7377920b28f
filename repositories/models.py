"""Backup repositories and the gateway servers that run data movers for them."""

from __future__ import annotations

import secrets
import shlex
from urllib.parse import urlsplit

from django.db import models
from django.urls import reverse

from repositories.choices import GatewayState, RepositoryKind
from vbrsite.secrets import EncryptedTextField, SecretError

DEFAULT_DATAMOVER_PORT = 8100


def new_token() -> str:
    """A fresh bearer token for a data mover."""
    return secrets.token_urlsafe(32)


class GatewayServer(models.Model):
    """A host that runs data movers for repositories the backup server can't reach directly
    (a NAS share mounted there, later object storage)."""

    name = models.CharField(max_length=100, unique=True)
    address = models.CharField(max_length=255, help_text="Host name or IP address.")
    description = models.TextField(blank=True)
    state = models.CharField(max_length=20, choices=GatewayState.choices,
                             default=GatewayState.UNKNOWN)
    last_seen = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def default_datamover_url(self, port: int = DEFAULT_DATAMOVER_PORT) -> str:
        return f"http://{self.address}:{port}"


class Repository(models.Model):
    """Where restore points live: a chunk store reached through its data mover."""

    name = models.CharField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    kind = models.CharField(max_length=10, choices=RepositoryKind.choices,
                            default=RepositoryKind.LOCAL)
    path = models.CharField(max_length=1024,
                            help_text="The repository folder on the data mover's host.")
    gateway = models.ForeignKey(GatewayServer, null=True, blank=True, on_delete=models.PROTECT,
                                related_name="repositories",
                                help_text="Empty: the data mover runs on the backup server.")
    datamover_url = models.URLField("data mover URL", max_length=500,
                                    help_text="e.g. http://127.0.0.1:8100 or https://gw1:8100")
    token = EncryptedTextField(default=new_token)
    ca_certificate = models.TextField(
        "CA certificate (PEM)", blank=True,
        help_text="The CA of the data mover's TLS certificate. Empty: the system's trust store.")
    capacity = models.BigIntegerField(null=True, blank=True,
                                      help_text="Bytes. Empty: the size of the filesystem.")
    encrypted = models.BooleanField(default=False)
    key = EncryptedTextField(blank=True)
    key_check = models.CharField(max_length=64, blank=True)
    kdf = models.JSONField("key derivation", default=dict, blank=True,
                           help_text="How the key is derived from the passphrase (no secret).")
    immutable_days = models.PositiveIntegerField(
        default=0, help_text="Restore points younger than this can't be deleted by anyone.")
    stats = models.JSONField(default=dict, blank=True,
                             help_text="The data mover's figures, as last read.")
    stats_updated = models.DateTimeField(null=True, blank=True)
    last_verification = models.JSONField(default=dict, blank=True)
    verified_at = models.DateTimeField(null=True, blank=True)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "repositories"

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("repositories:detail", args=[self.pk])

    def repository_key(self):
        """The RepositoryKey of an encrypted repository, else None."""
        from repositories.store import RepositoryKey

        return RepositoryKey.from_text(self.key) if self.encrypted and self.key else None

    def encryption_parameters(self):
        """What a gateway's data mover needs to create this encrypted repository (no secret), or None."""
        from repositories.store import EncryptionParameters

        if not (self.encrypted and self.kdf and self.key_check):
            return None
        return EncryptionParameters(kdf=self.kdf, key_check=self.key_check)

    def gateway_command(self, token_file: str = "TOKEN_FILE") -> str:
        """The command that starts this repository's data mover on its gateway."""
        parameters = self.encryption_parameters()
        port = self.datamover_bind().rsplit(":", 1)[1]
        return (f"python -m repositories.datamover --path {shlex.quote(self.path)} "
                f"--token-file {shlex.quote(token_file)} --init"
                + (f" --encryption {parameters.to_text()}" if parameters else "")
                + f" --bind 0.0.0.0:{port}")

    def client(self, **options):
        """A DataMoverClient for this repository's data mover."""
        from repositories.datamover.client import DataMoverClient, DataMoverError

        try:
            token = self.token
        except SecretError as exc:
            raise DataMoverError(f"the token of repository {self.name}: {exc} (on its edit page)") from None
        return DataMoverClient(self.datamover_url, token, ca_pem=self.ca_certificate or None, **options)

    def datamover_config(self):
        """What `manage.py datamover NAME` serves."""
        from repositories.datamover.app import DataMoverConfig

        return DataMoverConfig(path=self.path, token=self.token, key=self.repository_key(),
                               immutable_days=self.immutable_days, capacity=self.capacity)

    def datamover_bind(self) -> str:
        """host:port to listen on, from the data mover URL."""
        parts = urlsplit(self.datamover_url)
        default = 443 if parts.scheme == "https" else 80
        return f"{parts.hostname}:{parts.port or default}"

    @property
    def corrupted_restore_points(self) -> set[str]:
        """Manifest ids the last verification found damaged."""
        return set(self.last_verification.get("affected_manifests", []))

    def usage_percent(self) -> int | None:
        capacity, used = self.stats.get("capacity"), self.stats.get("used")
        if not capacity or used is None:
            return None
        return min(100, round(100 * used / capacity))
