"""Choices of the workers app: worker states, disk task kinds and states."""

from django.db import models


class WorkerState(models.TextChoices):
    """Where a worker VM and its runner stand."""

    DEPLOYING = "deploying", "Deploying"
    STARTING = "starting", "Starting"
    READY = "ready", "Ready"
    BUSY = "busy", "Busy"
    STOPPING = "stopping", "Stopping"
    STOPPED = "stopped", "Stopped"
    FAILED = "failed", "Failed"
    UNREACHABLE = "unreachable", "Unreachable"


# A worker in one of these states takes disk tasks.
WORKER_SERVING_STATES = (WorkerState.READY, WorkerState.BUSY)
# Its runner is expected to send heartbeats in these states.
WORKER_LIVE_STATES = (WorkerState.STARTING, WorkerState.READY, WorkerState.BUSY)
# Nothing is going on: the page stops polling in these.
WORKER_IDLE_STATES = (WorkerState.STOPPED, WorkerState.FAILED, WorkerState.UNREACHABLE)


class DiskTaskKind(models.TextChoices):
    """Which way a disk task moves data."""

    BACKUP = "backup", "Backup"
    RESTORE = "restore", "Restore"


class BackupMode(models.TextChoices):
    """A full backup reads every allocated block; an incremental one the dirty blocks only."""

    FULL = "full", "Full"
    INCREMENTAL = "incremental", "Incremental"


class DiskTaskState(models.TextChoices):
    """The life of one disk task."""

    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


DISK_TASK_ACTIVE_STATES = (DiskTaskState.PENDING, DiskTaskState.RUNNING)
DISK_TASK_TERMINAL_STATES = (DiskTaskState.SUCCEEDED, DiskTaskState.FAILED, DiskTaskState.CANCELLED)


class Launcher(models.TextChoices):
    """How a worker's runner comes alive once its VM is up (setting VBR_WORKER_LAUNCHER)."""

    CLOUD_INIT = "cloud-init", "cloud-init in the worker VM"
    LOCAL = "local", "a local process on the backup server"


EMBEDDED_QUEUE = "embedded"
