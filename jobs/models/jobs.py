"""Backup jobs: what to protect, where, when, and for how long."""

from __future__ import annotations

import json
from datetime import datetime

from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.db.models import Exists, ExpressionWrapper, OuterRef, Q, Value
from django.db.models.functions import Cast, Concat
from django.urls import reverse
from django.utils import timezone

from jobs.choices import (
    ACTIVE_STATES,
    WEEKDAYS,
    ActiveFullKind,
    RetentionKind,
    ScheduleKind,
    SessionKind,
    VmSelection,
)


def _weekday_names(days: list[int]) -> str:
    names = dict(WEEKDAYS)
    return ", ".join(names[d][:3] for d in sorted(days) if d in names)


def _tagged(queryset, tag: str):
    """VMs whose JSON list of tags holds ``tag`` (a superset on databases without JSON contains)."""
    from django.db import connection

    if connection.features.supports_json_field_contains:
        return queryset.filter(tags__contains=[tag])
    # SQLite holds the JSON text with non-ASCII escaped ("été" as "\u00e9t\u00e9"): match that form.
    return queryset.filter(tags__icontains=json.dumps(tag))


def _restore_making_it():
    """For a VM of an outer query: a restore session still running whose tag ("vbr:<id> restore",
    plugin.engine.description_tag) the VM's description carries, as every VM a restore creates
    does until its last steps."""
    from jobs.models import Session
    from plugin.engine import DESCRIPTION_PREFIX

    tag = Concat(Value(DESCRIPTION_PREFIX), Cast("pk", models.CharField()))
    return (Session.objects.filter(kind=SessionKind.RESTORE, state__in=ACTIVE_STATES)
            .annotate(vm_description=ExpressionWrapper(OuterRef("description"), output_field=models.TextField()))
            .filter(Q(vm_description=tag) | Q(vm_description__startswith=Concat(tag, Value(" ")))))


def vm_counts(jobs) -> dict[int, int]:
    """How many VMs each job selects now, for a page of jobs.

    The VMs chosen by name come from the page's ``prefetch_related("vms")``; those an
    in-place restore re-created are looked up once for the whole page.
    """
    from jobs.models.replaced_vms import vms_now

    chosen = [(job.pk, vm) for job in jobs if job.selection == VmSelection.EXPLICIT for vm in job.vms.all()]
    selected: dict[int, set[int]] = {job.pk: set() for job in jobs}
    for (job_pk, _), now in zip(chosen, vms_now([vm for _, vm in chosen]), strict=True):
        if now is not None:
            selected[job_pk].add(now.pk)  # two chosen rows of one VM count once
    return {job.pk: len(selected[job.pk]) if job.selection == VmSelection.EXPLICIT else job.vm_count()
            for job in jobs}


class BackupJob(models.Model):
    """A backup job: which VMs (resolved at each run), which repository, when, and retention."""

    name = models.CharField(max_length=100, unique=True)
    description = models.TextField(blank=True)

    # What: the selection is resolved again at every run, so VMs added to the
    # tag or cluster later are protected without editing the job.
    selection = models.CharField(max_length=10, choices=VmSelection.choices,
                                 default=VmSelection.EXPLICIT)
    vms = models.ManyToManyField("inventory.VM", blank=True, related_name="backup_jobs")
    tag = models.CharField(max_length=200, blank=True)
    cluster = models.ForeignKey("inventory.Cluster", null=True, blank=True,
                                on_delete=models.SET_NULL, related_name="backup_jobs")
    repository = models.ForeignKey("repositories.Repository", on_delete=models.PROTECT,
                                   related_name="backup_jobs")

    # When.
    schedule_kind = models.CharField("schedule", max_length=10, choices=ScheduleKind.choices,
                                     default=ScheduleKind.MANUAL)
    schedule_time = models.TimeField("at", null=True, blank=True,
                                     help_text="Time of day (server time zone).")
    schedule_weekdays = models.JSONField("weekdays", default=list, blank=True,
                                         help_text="0 = Monday … 6 = Sunday.")
    schedule_day = models.PositiveSmallIntegerField("day of month", null=True, blank=True)
    schedule_cron = models.CharField("cron expression", max_length=100, blank=True,
                                     help_text="minute hour day month weekday, e.g. 30 22 * * 1-5")

    # How long.
    retention_kind = models.CharField(max_length=10, choices=RetentionKind.choices,
                                      default=RetentionKind.POINTS)
    retain = models.PositiveIntegerField(default=7, help_text="Restore points or days to keep.")
    gfs_weekly = models.PositiveIntegerField("weekly (GFS)", default=0,
                                             help_text="Also keep the last restore point of this many weeks.")
    gfs_monthly = models.PositiveIntegerField("monthly (GFS)", default=0)
    gfs_yearly = models.PositiveIntegerField("yearly (GFS)", default=0)

    # Active fulls: read everything again now and then, so a bad block that
    # slipped into the chain doesn't live forever.
    active_full_kind = models.CharField(max_length=12, choices=ActiveFullKind.choices,
                                        default=ActiveFullKind.NEVER)
    active_full_days = models.PositiveIntegerField(null=True, blank=True,
                                                   help_text="A full every this many days.")
    active_full_weekdays = models.JSONField(default=list, blank=True)

    parallel_vms = models.PositiveSmallIntegerField("VMs in parallel", default=2)
    enabled = models.BooleanField(default=True)
    notification_address = models.EmailField(blank=True)
    created = models.DateTimeField(auto_now_add=True)
    modified = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("jobs:detail", args=[self.pk])

    def clean(self) -> None:
        errors = {}
        if self.selection == VmSelection.TAG and not self.tag:
            errors["tag"] = "Give the tag whose VMs the job protects."
        if self.selection == VmSelection.CLUSTER and not self.cluster_id:
            errors["cluster"] = "Choose the cluster whose VMs the job protects."
        if self.schedule_kind in (ScheduleKind.DAILY, ScheduleKind.WEEKDAYS, ScheduleKind.MONTHLY) \
                and self.schedule_time is None:
            errors["schedule_time"] = "Give the time of day the job runs."
        if self.schedule_kind == ScheduleKind.WEEKDAYS and not self.schedule_weekdays:
            errors["schedule_weekdays"] = "Choose at least one weekday."
        if self.schedule_kind == ScheduleKind.MONTHLY and not (self.schedule_day and 1 <= self.schedule_day <= 28):
            errors["schedule_day"] = "Give a day of the month from 1 to 28 (every month has it)."
        if self.schedule_kind == ScheduleKind.CRON:
            from jobs.scheduling import cron_error

            problem = cron_error(self.schedule_cron)
            if problem:
                errors["schedule_cron"] = problem
        if self.active_full_kind == ActiveFullKind.EVERY_DAYS and not self.active_full_days:
            errors["active_full_days"] = "Give how many days apart active fulls are."
        if self.active_full_kind == ActiveFullKind.WEEKDAYS and not self.active_full_weekdays:
            errors["active_full_weekdays"] = "Choose at least one weekday for active fulls."
        if self.retain is not None and self.retain < 1:
            errors["retain"] = "Keep at least one restore point (or one day)."
        if self.parallel_vms is not None and self.parallel_vms < 1:
            errors["parallel_vms"] = "Back up at least one VM at a time."
        if errors:
            raise ValidationError(errors)

    # What

    def resolve_vms(self, chosen: list[tuple] | None = None) -> list:
        """The VMs to back up now: explicit ones (followed across in-place restores), or the tag's
        or cluster's current VMs (but not one a restore is still making).

        ``chosen``: what chosen_vms_now() returned a moment ago (a session asks once).
        """
        if self.selection == VmSelection.EXPLICIT:
            now = {vm.pk: vm for _, vm in self._chosen(chosen) if vm is not None}
            return list(now.values())
        queryset = (self._selected().select_related("manager", "cluster").defer("manager__password")
                    .order_by("name"))
        # SQLite's approximation of a tag (a text match) is narrowed to exact tags here.
        return [vm for vm in queryset if self.selection == VmSelection.CLUSTER or self.tag in (vm.tags or [])]

    def _selected(self):
        """The tag's or cluster's VMs in the engine, without those a restore still running is making.

        A restore in place creates 'NAME-restoring-N' and, after the original is removed, still
        renames it, adds its NICs and gives it its description back; an inventory sync meanwhile
        brings it in with the restore's tag as its description. A backup holding it then would make
        those steps fail with the original already gone. Beside the original, the VM is unfinished.
        """
        from inventory.models import VM

        if self.selection == VmSelection.CLUSTER:
            queryset = VM.objects.filter(cluster_id=self.cluster_id) if self.cluster_id else VM.objects.none()
        else:
            queryset = _tagged(VM.objects.all(), self.tag)
        return queryset.filter(removed=False).exclude(Exists(_restore_making_it()))

    def chosen_vms_now(self) -> list[tuple]:
        """Each VM chosen by name, paired with that VM as the engine has it now (None: gone).

        An in-place restore re-creates the VM and the engine gives it a new id: the chosen
        VM is then the one the restore recorded in its place (ReplacedVm), once the restore
        has ended and an inventory sync has brought it in. The link, not the name: names
        are reused. Only a job that chooses VMs by name follows them: the VMs a tag or
        cluster job once chose are kept, unused, for when it chooses by name again.
        """
        from jobs.models.replaced_vms import vms_now

        if "vms" in getattr(self, "_prefetched_objects_cache", {}):  # a page of jobs: no query
            chosen = sorted(self.vms.all(), key=lambda vm: (vm.name, vm.pk))
        else:
            chosen = list(self.vms.select_related("manager", "cluster").defer("manager__password")
                          .order_by("name", "pk"))
        if self.selection != VmSelection.EXPLICIT:
            return [(vm, None if vm.removed else vm) for vm in chosen]
        return list(zip(chosen, vms_now(chosen), strict=True))

    def follow_replaced_vms(self, chosen: list[tuple] | None = None) -> list[tuple]:
        """Choose, instead of each chosen VM an in-place restore re-created, the VM in its place.

        The (old, new) pairs moved. Done when the job runs rather than when the restore
        records the link: the inventory only has the new VM after the sync that follows.
        """
        moved = [(vm, now) for vm, now in self._chosen(chosen) if now is not None and now.pk != vm.pk]
        if not moved:
            return moved
        with transaction.atomic():
            for old, new in moved:
                self.vms.remove(old)
                self.vms.add(new)
        return moved

    def chosen_vms_gone(self, chosen: list[tuple] | None = None) -> list:
        """VMs chosen by name that the engine no longer has (deleted, or re-created with a new id
        that the inventory doesn't have yet)."""
        if self.selection != VmSelection.EXPLICIT:
            return []
        return [vm for vm, now in self._chosen(chosen) if now is None]

    def _chosen(self, chosen: list[tuple] | None) -> list[tuple]:
        """``chosen`` when the caller looked the chosen VMs up already, else chosen_vms_now()."""
        return chosen if chosen is not None else self.chosen_vms_now()

    def vm_count(self) -> int:
        """How many VMs the job selects now (what the jobs list shows), without loading those of a
        tag or cluster."""
        from django.db import connection

        if self.selection == VmSelection.EXPLICIT:
            return vm_counts([self])[self.pk]
        queryset = self._selected()
        if self.selection == VmSelection.CLUSTER or connection.features.supports_json_field_contains:
            return queryset.count()
        return sum(1 for tags in queryset.values_list("tags", flat=True) if self.tag in (tags or []))

    def selection_label(self) -> str:
        if self.selection == VmSelection.TAG:
            return f"tag {self.tag}"
        if self.selection == VmSelection.CLUSTER:
            return f"cluster {self.cluster.name if self.cluster else '(deleted)'}"
        return "chosen VMs"

    # When

    def cron(self) -> str:
        """The schedule as a cron expression; empty for a manual job."""
        from jobs.scheduling import cron_of

        return cron_of(self)

    def schedule_label(self) -> str:
        at = self.schedule_time.strftime("%H:%M") if self.schedule_time else ""
        if self.schedule_kind == ScheduleKind.DAILY:
            return f"Daily at {at}"
        if self.schedule_kind == ScheduleKind.WEEKDAYS:
            return f"{_weekday_names(self.schedule_weekdays)} at {at}"
        if self.schedule_kind == ScheduleKind.MONTHLY:
            return f"Monthly on day {self.schedule_day} at {at}"
        if self.schedule_kind == ScheduleKind.CRON:
            return f"cron {self.schedule_cron}"
        return "Manual"

    def next_run(self) -> datetime | None:
        """When the job runs next on its own; None when manual or disabled."""
        if not self.enabled or self.schedule_kind == ScheduleKind.MANUAL:
            return None
        from jobs.scheduling import next_run_of

        return next_run_of(self)

    def retention_label(self) -> str:
        unit = "restore points" if self.retention_kind == RetentionKind.POINTS else "days"
        label = f"{self.retain} {unit}"
        gfs = [f"{n} {what}" for n, what in ((self.gfs_weekly, "weekly"), (self.gfs_monthly, "monthly"),
                                             (self.gfs_yearly, "yearly")) if n]
        return label + (f" + GFS {', '.join(gfs)}" if gfs else "")

    def active_full_due(self, last_full: datetime | None, now: datetime | None = None) -> str:
        """Why an active full is due now (a sentence for the log), or "" when it isn't."""
        now = timezone.localtime(now or timezone.now())
        every = self.active_full_days
        # Calendar days: a full that ended at 22:40 is due again at the run N days later at 22:00.
        if self.active_full_kind == ActiveFullKind.EVERY_DAYS and every and last_full is not None \
                and (now.date() - timezone.localtime(last_full).date()).days >= every:
            return f"an active full is due every {self.active_full_days} days"
        today = now.weekday() in self.active_full_weekdays
        if self.active_full_kind == ActiveFullKind.WEEKDAYS and today and (
                last_full is None or timezone.localtime(last_full).date() != now.date()):
            return f"an active full is due on {_weekday_names(self.active_full_weekdays)}"
        return ""
