"""Forms of the job wizard (one per step) and of the session history filters.

The rules live in BackupJob.clean(); each step runs them on a job built from
what it has and shows the errors of its own fields, at the field.
"""

from __future__ import annotations

from datetime import time

from django import forms
from django.core.exceptions import ValidationError

from jobs.choices import (
    WEEKDAYS,
    ActiveFullKind,
    RetentionKind,
    ScheduleKind,
    SessionKind,
    SessionState,
    VmSelection,
)
from jobs.models import BackupJob


def _job_errors(form: forms.Form, values: dict) -> None:
    """Run the model's rules on a job with these values; add the errors of this form's fields."""
    job = BackupJob(**{k: v for k, v in values.items() if k != "vms"})
    try:
        job.clean()
    except ValidationError as exc:
        for field, messages in exc.message_dict.items():
            if field in form.fields:
                for message in messages:
                    form.add_error(field, message)


class NameForm(forms.Form):
    """Step 1: what the job is called."""

    name = forms.CharField(max_length=100)
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)

    def __init__(self, *args, job_id: int | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.job_id = job_id

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        if BackupJob.objects.filter(name=name).exclude(pk=self.job_id).exists():
            raise ValidationError("A job with this name exists already: pick another name.")
        return name


class VmsForm(forms.Form):
    """Step 2: which VMs: chosen in the inventory tree, by tag, or by cluster (resolved at each run)."""

    selection = forms.ChoiceField(choices=VmSelection.choices, widget=forms.RadioSelect,
                                  initial=VmSelection.EXPLICIT)
    vms = forms.ModelMultipleChoiceField(queryset=None, required=False, widget=forms.CheckboxSelectMultiple)
    tag = forms.CharField(max_length=200, required=False,
                          widget=forms.TextInput(attrs={"list": "known-tags"}))
    cluster = forms.ModelChoiceField(queryset=None, required=False)

    def __init__(self, *args, **kwargs):
        from inventory.models import VM, Cluster

        super().__init__(*args, **kwargs)
        self.fields["vms"].queryset = VM.objects.filter(removed=False).select_related("cluster", "manager").defer("manager__password")
        self.fields["cluster"].queryset = Cluster.objects.filter(removed=False).select_related("manager").defer("manager__password")

    def clean(self) -> dict:
        data = super().clean()
        if data.get("selection") == VmSelection.EXPLICIT and not data.get("vms"):
            self.add_error("vms", "Choose at least one VM.")
        _job_errors(self, {"selection": data.get("selection"), "tag": data.get("tag") or "",
                           "cluster": data.get("cluster")})
        return data


class StorageForm(forms.Form):
    """Step 3: where restore points go and how long they are kept."""

    repository = forms.ModelChoiceField(queryset=None)
    retention_kind = forms.ChoiceField(choices=RetentionKind.choices, initial=RetentionKind.POINTS)
    retain = forms.IntegerField(min_value=1, initial=7)
    gfs_weekly = forms.IntegerField(min_value=0, initial=0, label="Weekly (GFS)")
    gfs_monthly = forms.IntegerField(min_value=0, initial=0, label="Monthly (GFS)")
    gfs_yearly = forms.IntegerField(min_value=0, initial=0, label="Yearly (GFS)")
    active_full_kind = forms.ChoiceField(choices=ActiveFullKind.choices, initial=ActiveFullKind.NEVER,
                                         label="Active full")
    active_full_days = forms.IntegerField(min_value=1, required=False, label="Every N days")
    active_full_weekdays = forms.TypedMultipleChoiceField(choices=WEEKDAYS, coerce=int, required=False,
                                                          widget=forms.CheckboxSelectMultiple,
                                                          label="On weekdays")
    parallel_vms = forms.IntegerField(min_value=1, max_value=32, initial=2, label="VMs in parallel")

    def __init__(self, *args, **kwargs):
        from repositories.models import Repository

        super().__init__(*args, **kwargs)
        self.fields["repository"].queryset = Repository.objects.all()

    def clean(self) -> dict:
        data = super().clean()
        _job_errors(self, {k: data.get(k) for k in ("retention_kind", "retain", "active_full_kind",
                                                    "active_full_days", "parallel_vms")}
                    | {"active_full_weekdays": data.get("active_full_weekdays") or []})
        return data


class ScheduleForm(forms.Form):
    """Step 4: when the job runs on its own, and who hears about it."""

    schedule_kind = forms.ChoiceField(choices=ScheduleKind.choices, initial=ScheduleKind.MANUAL,
                                      label="Runs")
    schedule_time = forms.TimeField(required=False, label="At", initial=time(22, 0),
                                    widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"))
    schedule_weekdays = forms.TypedMultipleChoiceField(choices=WEEKDAYS, coerce=int, required=False,
                                                       widget=forms.CheckboxSelectMultiple, label="Weekdays")
    schedule_day = forms.IntegerField(min_value=1, max_value=28, required=False, label="Day of month")
    schedule_cron = forms.CharField(max_length=100, required=False, label="Cron expression")
    enabled = forms.BooleanField(required=False, initial=True)
    notification_address = forms.EmailField(required=False)

    def clean(self) -> dict:
        data = super().clean()
        _job_errors(self, {k: data.get(k) for k in ("schedule_kind", "schedule_time", "schedule_day")}
                    | {"schedule_weekdays": data.get("schedule_weekdays") or [],
                       "schedule_cron": data.get("schedule_cron") or ""})
        return data


STEPS = (
    ("name", "Name", NameForm),
    ("vms", "VMs", VmsForm),
    ("storage", "Repository and retention", StorageForm),
    ("schedule", "Schedule", ScheduleForm),
    ("summary", "Summary", None),
)
STEP_NAMES = [name for name, _, _ in STEPS]


class SessionFilterForm(forms.Form):
    """Filters of the session history."""

    state = forms.ChoiceField(choices=[("", "Any state"), *SessionState.choices], required=False)
    kind = forms.ChoiceField(choices=[("", "Backups and restores"), *SessionKind.choices], required=False)
    job = forms.ModelChoiceField(queryset=BackupJob.objects.all(), required=False, empty_label="Any job")
    since = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    q = forms.CharField(required=False, label="Search")
