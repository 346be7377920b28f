"""Sessions: one run of a job (or a restore), its VMs, its log, and what reconcile cleaned up."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, models, transaction
from django.urls import reverse
from django.utils import timezone

from jobs.choices import (
    ACTIVE_STATES,
    DONE_STATES,
    TERMINAL_STATES,
    BackupType,
    LogLevel,
    ReconcileKind,
    SessionKind,
    SessionState,
    Trigger,
)
from vbrsite.times import clock


class Figures(models.Model):
    """Figures every session and VM task keeps: bytes and rate."""

    progress = models.FloatField(default=0, help_text="Percent done.")
    bytes_total = models.BigIntegerField(default=0, help_text="Bytes to move.")
    bytes_read = models.BigIntegerField(default=0)
    bytes_sent = models.BigIntegerField(default=0)
    bytes_stored = models.BigIntegerField(default=0)
    rate = models.FloatField(default=0, help_text="Bytes read per second.")

    class Meta:
        abstract = True

    @property
    def duration(self) -> timedelta | None:
        started = getattr(self, "started", None)
        if started is None:
            return None
        return (getattr(self, "finished", None) or timezone.now()) - started


class Session(Figures):
    """One run of a backup job (or one restore): state, progress, figures and a log.

    The record owns its lifecycle: ``enqueue()`` (on commit) → ``start()`` (a
    conditional update, so only one driver ever runs it) → ``log()``/``beat()``
    → ``terminate()``. Cancelling sets a flag the driver checks between steps.
    """

    kind = models.CharField(max_length=10, choices=SessionKind.choices, default=SessionKind.BACKUP)
    job = models.ForeignKey("jobs.BackupJob", null=True, blank=True, on_delete=models.SET_NULL,
                            related_name="sessions")
    name = models.CharField(max_length=200, help_text="The job's name, or what was restored.")
    state = models.CharField(max_length=10, choices=SessionState.choices,
                             default=SessionState.PENDING, db_index=True)
    trigger = models.CharField(max_length=10, choices=Trigger.choices, default=Trigger.MANUAL)
    full = models.BooleanField(default=False, help_text="Asked for a full backup of every VM.")
    options = models.JSONField(default=dict, blank=True,
                               help_text="What to do when there is no job: VM ids, repository, restore target.")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                   on_delete=models.SET_NULL)
    created = models.DateTimeField(default=timezone.now, db_index=True)
    started = models.DateTimeField(null=True, blank=True)
    finished = models.DateTimeField(null=True, blank=True)
    heartbeat = models.DateTimeField(null=True, blank=True)
    cancel_requested = models.BooleanField(default=False)
    summary = models.TextField(blank=True)
    task_id = models.CharField(max_length=64, blank=True, help_text="The django-q2 task.")

    class Meta:
        ordering = ["-created"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} session {self.pk} ({self.name})"

    def get_absolute_url(self) -> str:
        return reverse("jobs:session", args=[self.pk])

    @property
    def is_terminal(self) -> bool:
        return self.state in TERMINAL_STATES

    @property
    def is_active(self) -> bool:
        return self.state in ACTIVE_STATES

    # Lifecycle

    def backup_repository(self):
        """The repository a backup session writes to: its job's, or the one it was started with
        (None once that one is deleted)."""
        from repositories.models import Repository

        if self.job is not None:
            return self.job.repository
        return Repository.objects.filter(pk=(self.options or {}).get("repository_id")).first()

    def enqueue(self) -> None:
        """Send the session to the control runner once the transaction that made it commits."""
        session_id = self.pk

        def send() -> None:
            from django_q.tasks import async_task

            task_id = async_task("jobs.tasks.run_session", session_id,
                                 task_name=f"session-{session_id}",
                                 cluster=settings.Q_CLUSTER["name"])
            Session.objects.filter(pk=session_id).update(task_id=str(task_id or ""))

        transaction.on_commit(send)

    def start(self) -> bool:
        """Claim the session for this driver; False if it isn't pending any more."""
        now = timezone.now()
        claimed = Session.objects.filter(pk=self.pk, state=SessionState.PENDING).update(
            state=SessionState.RUNNING, started=now, heartbeat=now)
        if claimed:
            self.state, self.started, self.heartbeat = SessionState.RUNNING, now, now
        return bool(claimed)

    def log(self, message: str, level: str = LogLevel.INFO) -> SessionLog:
        """Add a line to the session's log (shown live on its page)."""
        return SessionLog.objects.create(session_id=self.pk, level=level, message=message[:4000])

    def warn(self, message: str) -> SessionLog:
        return self.log(message, LogLevel.WARNING)

    def error(self, message: str) -> SessionLog:
        return self.log(message, LogLevel.ERROR)

    def beat(self, **figures) -> bool:
        """Record that the driver is alive (and the figures given); True when cancel was requested."""
        Session.objects.filter(pk=self.pk).update(heartbeat=timezone.now(), **figures)
        for name, value in figures.items():
            setattr(self, name, value)
        return self.cancel_was_requested()

    def cancel_was_requested(self) -> bool:
        self.cancel_requested = Session.objects.filter(pk=self.pk, cancel_requested=True).exists()
        return self.cancel_requested

    def request_cancel(self) -> bool:
        """Ask the session to stop; a queued one ends at once. False if it had ended already.

        A queued session never reaches its driver (``start()`` finds it cancelled), so the
        mail the driver sends at a session's end is sent here, by whoever won the update.
        """
        now = timezone.now()
        if Session.objects.filter(pk=self.pk, state=SessionState.PENDING).update(
                state=SessionState.CANCELLED, cancel_requested=True, finished=now,
                summary="Cancelled while queued: nothing ran."):
            self.log("Cancelled before it started.", LogLevel.WARNING)
            self.refresh_from_db()
            self._mail_end()
            return True
        updated = Session.objects.filter(pk=self.pk, state=SessionState.RUNNING).update(cancel_requested=True)
        if updated:
            self.log("Cancel requested: stopping and cleaning up.", LogLevel.WARNING)
        self.refresh_from_db()
        return bool(updated)

    def _mail_end(self) -> None:
        """Mail the session's end once this transaction commits, if its job has an address.

        In the background (jobs.notifications.notify_session_end_soon): the caller is a web
        request (the Cancel button) or a command, which a mail server that doesn't answer
        must not hold. ``robust``: a mail that can't be started is lost (logged), not the
        cancel that was committed.
        """
        if self.job is None or not self.job.notification_address:
            return
        session_id = self.pk

        def send() -> None:
            from jobs.notifications import notify_session_end_soon

            notify_session_end_soon(Session.objects.select_related("job").get(pk=session_id))

        transaction.on_commit(send, robust=True)

    def terminate(self, state: str, summary: str = "") -> bool:
        """End a running session in ``state``; False if something else ended it first."""
        now = timezone.now()
        fields = {"state": state, "finished": now, "heartbeat": now}
        if summary:
            fields["summary"] = summary
        if state in DONE_STATES:
            fields["progress"] = 100.0
        ended = Session.objects.filter(pk=self.pk, state__in=ACTIVE_STATES).update(**fields)
        if ended:
            for name, value in fields.items():
                setattr(self, name, value)
        return bool(ended)


class SessionLog(models.Model):
    """One line of a session's log."""

    session = models.ForeignKey(Session, on_delete=models.CASCADE, related_name="log_lines")
    time = models.DateTimeField(default=timezone.now)
    level = models.CharField(max_length=10, choices=LogLevel.choices, default=LogLevel.INFO)
    message = models.TextField()

    class Meta:
        ordering = ["time", "pk"]

    def __str__(self) -> str:
        return f"{clock(self.time)} {self.level} {self.message}"


class TaskSession(Figures):
    """One VM of a session: its state, whether full or incremental and why, and each disk's figures.

    ``disks`` is a list of dicts, one per disk: ``id``, ``name``, ``size``,
    ``mode``, ``state``, ``bytes_total``, ``bytes_done``, ``rate``,
    ``bytes_read``, ``bytes_sent``, ``bytes_stored``, ``error``.
    """

    session = models.ForeignKey(Session, on_delete=models.CASCADE, related_name="tasks")
    vm = models.ForeignKey("inventory.VM", null=True, blank=True, on_delete=models.SET_NULL,
                           related_name="task_sessions")
    vm_name = models.CharField(max_length=255)
    state = models.CharField(max_length=10, choices=SessionState.choices, default=SessionState.PENDING)
    mode = models.CharField(max_length=12, choices=BackupType.choices, blank=True)
    reason = models.TextField(blank=True, help_text="Why a full backup was made.")
    disks = models.JSONField(default=list, blank=True)
    started = models.DateTimeField(null=True, blank=True)
    finished = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)
    restore_point = models.ForeignKey("jobs.RestorePoint", null=True, blank=True,
                                      on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["vm_name", "pk"]

    def __str__(self) -> str:
        return f"{self.vm_name} in session {self.session_id}"


class VmLock(models.Model):
    """A VM held by a session: one backup per VM at a time (the unique VM makes the claim atomic)."""

    vm = models.OneToOneField("inventory.VM", on_delete=models.CASCADE, related_name="lock")
    session = models.ForeignKey(Session, on_delete=models.CASCADE, related_name="locks")
    acquired = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.vm} held by session {self.session_id}"

    @classmethod
    def acquire(cls, vm, session: Session) -> Session | None:
        """Hold the VM for the session; None when held, else the session that holds it."""
        for attempt in range(5):
            try:
                with transaction.atomic():
                    cls.objects.create(vm=vm, session=session)
                return None
            except IntegrityError:
                holder = cls.objects.filter(vm=vm).select_related("session").first()
                if holder is not None:
                    return holder.session
                if attempt == 4:  # not a lock held by someone: a real integrity problem
                    raise
                # Released between our insert and our look: try again (None must mean "held by us").

    @classmethod
    def release(cls, vm, session: Session) -> None:
        cls.objects.filter(vm=vm, session=session).delete()


class ReconcileAction(models.Model):
    """Something reconcile found left behind and cleaned up (shown on the dashboard)."""

    time = models.DateTimeField(default=timezone.now, db_index=True)
    kind = models.CharField(max_length=20, choices=ReconcileKind.choices)
    manager = models.ForeignKey("inventory.Manager", null=True, blank=True, on_delete=models.SET_NULL)
    session = models.ForeignKey(Session, null=True, blank=True, on_delete=models.SET_NULL,
                                related_name="reconcile_actions")
    object_id = models.CharField(max_length=64, blank=True, help_text="The engine's id of what was cleaned.")
    message = models.TextField()

    class Meta:
        ordering = ["-time", "-pk"]

    def __str__(self) -> str:
        return self.message
