"""Choices of the jobs app: session and task states, schedules, retention and restore point kinds."""

from django.db import models


class SessionKind(models.TextChoices):
    """What a session does."""

    BACKUP = "backup", "Backup"
    RESTORE = "restore", "Restore"


class SessionState(models.TextChoices):
    """Where a session (or one VM of it) stands; the last four are terminal."""

    PENDING = "pending", "Queued"
    RUNNING = "running", "Running"
    SUCCESS = "success", "Success"
    WARNING = "warning", "Warning"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


TERMINAL_STATES = (
    SessionState.SUCCESS, SessionState.WARNING, SessionState.FAILED, SessionState.CANCELLED,
)
ACTIVE_STATES = (SessionState.PENDING, SessionState.RUNNING)
# Ended with its work done (with or without a warning): progress 100%, no error.
DONE_STATES = (SessionState.SUCCESS, SessionState.WARNING)

# How bad each end state is: a session ends in the worst of its VMs' states.
SEVERITY = {
    SessionState.SUCCESS: 0,
    SessionState.WARNING: 1,
    SessionState.CANCELLED: 2,
    SessionState.FAILED: 3,
}


def worst_state(states) -> str:
    """The worst of the given end states; success for none."""
    states = [SessionState(s) for s in states if s in SEVERITY]
    return max(states, key=SEVERITY.__getitem__, default=SessionState.SUCCESS)


class LogLevel(models.TextChoices):
    """The level of a session log line."""

    INFO = "info", "Info"
    WARNING = "warning", "Warning"
    ERROR = "error", "Error"


class Trigger(models.TextChoices):
    """Who started a session."""

    MANUAL = "manual", "Started by a user"
    SCHEDULE = "schedule", "Scheduled"


class VmSelection(models.TextChoices):
    """How a job chooses its VMs (resolved again at every run)."""

    EXPLICIT = "explicit", "These VMs"
    TAG = "tag", "VMs with a tag"
    CLUSTER = "cluster", "VMs of a cluster"


class ScheduleKind(models.TextChoices):
    """When a job runs on its own."""

    MANUAL = "manual", "Manually only"
    DAILY = "daily", "Daily"
    WEEKDAYS = "weekdays", "On chosen weekdays"
    MONTHLY = "monthly", "Monthly"
    CRON = "cron", "Cron expression"


class RetentionKind(models.TextChoices):
    """How long a job keeps restore points."""

    POINTS = "points", "Restore points"
    DAYS = "days", "Days"


class ActiveFullKind(models.TextChoices):
    """When a job reads the whole disk again instead of an incremental."""

    NEVER = "never", "Never (incremental forever)"
    EVERY_DAYS = "every_days", "Every N days"
    WEEKDAYS = "weekdays", "On chosen weekdays"


WEEKDAYS = (
    (0, "Monday"), (1, "Tuesday"), (2, "Wednesday"), (3, "Thursday"),
    (4, "Friday"), (5, "Saturday"), (6, "Sunday"),
)


class BackupType(models.TextChoices):
    """A restore point read the whole disk (full) or only what changed (incremental)."""

    FULL = "full", "Full"
    INCREMENTAL = "incremental", "Incremental"


class RestorePointState(models.TextChoices):
    """A restore point's health as the last verification of its repository saw it."""

    OK = "ok", "OK"
    CORRUPTED = "corrupted", "Corrupted"


class ReconcileKind(models.TextChoices):
    """What reconcile did."""

    SESSION_FAILED = "session_failed", "Failed a session whose driver died"
    BACKUP_FINALIZED = "backup_finalized", "Finalized a backup"
    TRANSFER_CANCELLED = "transfer_cancelled", "Cancelled an image transfer"
    SNAPSHOT_DELETED = "snapshot_deleted", "Deleted a snapshot"
    LOCK_RELEASED = "lock_released", "Released a VM lock"
    RESTORE_CLEANED = "restore_cleaned", "Removed what a failed restore created"
    MANIFEST_DELETED = "manifest_deleted", "Deleted a manifest no restore point was recorded for"
    ERROR = "error", "Could not clean up"
