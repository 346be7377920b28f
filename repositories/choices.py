"""Choices of the repositories app."""

from django.db import models


class RepositoryKind(models.TextChoices):
    """What kind of storage holds the repository, as the data mover's host sees it."""

    LOCAL = "local", "Local folder"
    NFS = "nfs", "NFS share (mounted on the data mover's host)"
    SMB = "smb", "SMB share (mounted on the data mover's host)"


class GatewayState(models.TextChoices):
    """Whether the backup server reached a gateway's data mover lately."""

    UNKNOWN = "unknown", "Unknown"
    READY = "ready", "Ready"
    UNREACHABLE = "unreachable", "Unreachable"


class RestorePointState(models.TextChoices):
    """A restore point as the last verification saw it."""

    OK = "ok", "OK"
    CORRUPTED = "corrupted", "Corrupted"
    DAMAGED = "damaged", "Unreadable manifest"
