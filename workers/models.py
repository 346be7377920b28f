"""Workers (the VMs that move disk data) and the disk tasks they run.

A worker is a Linux VM deployed into an oVirt cluster whose runner
(``manage.py runworker NAME``: a django-q2 cluster named after the worker's
queue, plus a heartbeat) takes disk tasks from that queue. The backup server
itself is the embedded worker (queue "embedded", no row): the fallback when no
worker of the VM's cluster is ready.

A DiskTask is one disk moved between an imageio transfer and a repository's
data mover. The session driver (jobs) creates it through workers.dispatch and
polls it; the runner claims it with a conditional update, writes progress and
heartbeat to it at least every 2 seconds and stores the result on it.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.urls import reverse
from django.utils import timezone

from workers.choices import (
    DISK_TASK_ACTIVE_STATES,
    DISK_TASK_TERMINAL_STATES,
    EMBEDDED_QUEUE,
    WORKER_SERVING_STATES,
    BackupMode,
    DiskTaskKind,
    DiskTaskState,
    WorkerState,
)

NAME_VALIDATOR = RegexValidator(
    r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$",
    "Use up to 63 letters, digits, '.', '_' or '-', starting with a letter or digit "
    "(the name becomes the worker VM's host name).",
)


def queue_for(name: str) -> str:
    """The runner queue of a worker: never the control or embedded queue."""
    return f"worker-{name}"


class Worker(models.Model):
    """A worker VM in one cluster of a manager, and the runner that serves its queue."""

    name = models.CharField(max_length=63, unique=True, validators=[NAME_VALIDATOR])
    manager = models.ForeignKey("inventory.Manager", on_delete=models.CASCADE,
                                related_name="workers")
    cluster = models.ForeignKey("inventory.Cluster", on_delete=models.CASCADE,
                                related_name="workers")
    preferred_host = models.ForeignKey("inventory.Host", null=True, blank=True,
                                       on_delete=models.SET_NULL, related_name="+",
                                       help_text="Empty: the engine places the VM.")
    engine_vm_id = models.CharField("engine VM id", max_length=64, blank=True)
    template = models.CharField(max_length=255, default="Blank",
                                help_text="The engine template to create the VM from; "
                                          "Blank: an empty VM installed by cloud-init.")
    cpus = models.PositiveSmallIntegerField("CPUs", default=2,
                                            validators=[MinValueValidator(1), MaxValueValidator(64)])
    memory = models.PositiveIntegerField("memory (MiB)", default=2048,
                                         validators=[MinValueValidator(512)])
    vnic_profile = models.CharField("vNIC profile", max_length=64, blank=True,
                                    help_text="Engine id of the vNIC profile; empty: no NIC.")
    storage_domain = models.ForeignKey("inventory.StorageDomain", null=True, blank=True,
                                       on_delete=models.SET_NULL, related_name="+")
    max_tasks = models.PositiveSmallIntegerField("max concurrent tasks", default=4,
                                                 validators=[MinValueValidator(1),
                                                             MaxValueValidator(32)])
    queue = models.CharField(max_length=100, unique=True)
    state = models.CharField(max_length=20, choices=WorkerState.choices,
                             default=WorkerState.DEPLOYING)
    software_version = models.CharField(max_length=50, blank=True)
    last_heartbeat = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    # Where the runner lives: its host name and, for the local launcher, its process id.
    runner_host = models.CharField(max_length=255, blank=True)
    runner_pid = models.IntegerField(null=True, blank=True)
    idle_since = models.DateTimeField(null=True, blank=True,
                                      help_text="When its last task ended (idle stop).")
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs):
        if not self.queue:
            self.queue = queue_for(self.name)
        super().save(*args, **kwargs)

    def get_absolute_url(self) -> str:
        return reverse("workers:detail", args=[self.pk])

    @property
    def is_serving(self) -> bool:
        return self.state in WORKER_SERVING_STATES

    def active_tasks(self) -> models.QuerySet[DiskTask]:
        return self.disk_tasks.filter(state__in=DISK_TASK_ACTIVE_STATES)

    def heartbeat_age(self) -> timedelta | None:
        return timezone.now() - self.last_heartbeat if self.last_heartbeat else None

    def heartbeat_is_late(self) -> bool:
        """True when the runner has been silent longer than VBR_WORKER_HEARTBEAT_TIMEOUT."""
        age = self.heartbeat_age()
        limit = timedelta(seconds=settings.VBR_WORKER_HEARTBEAT_TIMEOUT)
        return age is None or age > limit

    def throughput(self) -> float:
        """Bytes per second of its running tasks, as they last reported."""
        running = self.disk_tasks.filter(state=DiskTaskState.RUNNING)
        return float(sum(running.values_list("rate", flat=True)))


class DiskTask(models.Model):
    """One disk moved by a worker runner: a backup (imageio → data mover) or a restore.

    ``session_id`` is the jobs Session id (an integer, not a foreign key, so the
    workers app doesn't depend on jobs). Secrets never travel in the task
    payload: the runner reads the manager's CA and the repository's token and
    key from the database. ``attempt`` counts runs: when a worker is lost, the
    task goes back to pending on another worker (``attempts`` keeps the history).
    """

    kind = models.CharField(max_length=10, choices=DiskTaskKind.choices)
    session_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    worker = models.ForeignKey(Worker, null=True, blank=True, on_delete=models.SET_NULL,
                               related_name="disk_tasks",
                               help_text="Empty: the embedded worker.")
    queue = models.CharField(max_length=100, default=EMBEDDED_QUEUE)
    manager = models.ForeignKey("inventory.Manager", on_delete=models.CASCADE, related_name="+")
    cluster = models.ForeignKey("inventory.Cluster", null=True, blank=True, on_delete=models.SET_NULL,
                                related_name="+",
                                help_text="Where its worker was chosen (a restore's target cluster); "
                                          "a task sent again goes to a worker there.")
    repository = models.ForeignKey("repositories.Repository", on_delete=models.CASCADE,
                                   related_name="+")
    disk_engine_id = models.CharField(max_length=64, help_text="The source disk's engine id.")
    disk_name = models.CharField(max_length=255, blank=True)
    disk_size = models.BigIntegerField(default=0, help_text="virtual size, bytes")
    disk_format = models.CharField(max_length=10, blank=True)
    transfer_url = models.URLField(max_length=1000)
    mode = models.CharField(max_length=12, choices=BackupMode.choices, default=BackupMode.FULL)
    base_manifest_id = models.CharField(max_length=128, blank=True)
    manifest_id = models.CharField(max_length=128, blank=True,
                                   help_text="A restore reads this restore point.")
    state = models.CharField(max_length=10, choices=DiskTaskState.choices,
                             default=DiskTaskState.PENDING, db_index=True)
    bytes_total = models.BigIntegerField(default=0)
    bytes_done = models.BigIntegerField(default=0)
    rate = models.FloatField(default=0.0, help_text="bytes per second")
    created = models.DateTimeField(auto_now_add=True)
    started = models.DateTimeField(null=True, blank=True)
    reads_finished = models.DateTimeField(
        null=True, blank=True,
        help_text="When a backup had read every block it needs: its transfer may be finalized "
                  "while the last blocks are sent. A task lost after that can't be sent again.")
    finished = models.DateTimeField(null=True, blank=True)
    heartbeat = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)
    cancel_requested = models.BooleanField(default=False)
    result = models.JSONField(default=dict, blank=True)
    attempt = models.PositiveSmallIntegerField(default=1)
    attempts = models.JSONField(default=list, blank=True,
                                help_text="Earlier runs: worker, error, started, finished.")
    runner = models.CharField(max_length=255, blank=True,
                              help_text="host:pid of the runner process that holds it.")

    class Meta:
        ordering = ["-created"]
        indexes = [models.Index(fields=["worker", "state"], name="disktask_worker_state")]

    def __str__(self) -> str:
        return f"{self.kind} of disk {self.disk_name or self.disk_engine_id} ({self.state})"

    @property
    def is_terminal(self) -> bool:
        return self.state in DISK_TASK_TERMINAL_STATES

    @property
    def worker_name(self) -> str:
        """What the session log says moved the disk."""
        return self.worker.name if self.worker_id else "embedded worker"

    def percent(self) -> int:
        if not self.bytes_total:
            return 100 if self.state == DiskTaskState.SUCCEEDED else 0
        return min(100, int(100 * self.bytes_done / self.bytes_total))

    def queued_since(self):
        """When the task was last put in a queue: made, or sent again after its worker was lost."""
        finished = self.attempts[-1].get("finished") if self.attempts else None
        return datetime.fromisoformat(finished) if finished else self.created

    def figures(self) -> dict:
        """The moved bytes (so far, while it runs) and seconds (once done), as the result has them."""
        return dict(self.result.get("figures", {}))
