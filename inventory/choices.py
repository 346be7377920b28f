"""Choices of the inventory: manager states and the engine's enumerations we display."""

from django.db import models


class ManagerState(models.TextChoices):
    """Where a registered manager stands with the backup server."""

    NEW = "new", "New"
    CONNECTED = "connected", "Connected"
    SYNCING = "syncing", "Syncing"
    ERROR = "error", "Error"


# States in which no sync is running: the page stops polling in these.
MANAGER_IDLE_STATES = (ManagerState.NEW, ManagerState.CONNECTED, ManagerState.ERROR)


class DiskFormat(models.TextChoices):
    """A disk image's format in the engine."""

    RAW = "raw", "raw"
    COW = "cow", "qcow2 (cow)"


class VmStatus(models.TextChoices):
    """The engine's VM power states (ovirtsdk4 VmStatus values)."""

    UP = "up", "Up"
    DOWN = "down", "Down"
    PAUSED = "paused", "Paused"
    SUSPENDED = "suspended", "Suspended"
    POWERING_UP = "powering_up", "Powering up"
    POWERING_DOWN = "powering_down", "Powering down"
    REBOOT_IN_PROGRESS = "reboot_in_progress", "Rebooting"
    MIGRATING = "migrating", "Migrating"
    WAIT_FOR_LAUNCH = "wait_for_launch", "Waiting for launch"
    IMAGE_LOCKED = "image_locked", "Image locked"
    NOT_RESPONDING = "not_responding", "Not responding"
    SAVING_STATE = "saving_state", "Saving state"
    RESTORING_STATE = "restoring_state", "Restoring state"
    UNASSIGNED = "unassigned", "Unassigned"
    UNKNOWN = "unknown", "Unknown"
