"""The job wizard: name → VMs → repository and retention → schedule → summary.

What each step posted is kept in the user's session, as posted, so going back
shows it again and the summary re-validates every step before saving.
"""

from __future__ import annotations

from django.contrib import messages
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse, QueryDict
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse

from jobs.forms import STEP_NAMES, STEPS
from jobs.models import BackupJob
from jobs.views.access import editors_only

FIELDS_OF_JOB = (
    "name", "description", "selection", "tag", "cluster", "repository", "retention_kind", "retain",
    "gfs_weekly", "gfs_monthly", "gfs_yearly", "active_full_kind", "active_full_days",
    "active_full_weekdays", "parallel_vms", "schedule_kind", "schedule_time", "schedule_weekdays",
    "schedule_day", "schedule_cron", "enabled", "notification_address",
)


def _key(job_id: int | None) -> str:
    return f"job-wizard-{job_id or 'new'}"


def _as_post(job: BackupJob) -> dict[str, list[str]]:
    """The job as the wizard's forms would have posted it (for editing)."""
    data: dict[str, list[str]] = {}
    for name in FIELDS_OF_JOB:
        value = getattr(job, f"{name}_id" if name in ("cluster", "repository") else name)
        if isinstance(value, list):
            data[name] = [str(v) for v in value]
        elif isinstance(value, bool):
            data[name] = ["on"] if value else []
        elif value is not None:
            data[name] = [value.strftime("%H:%M") if hasattr(value, "strftime") else str(value)]
    # A chosen VM an in-place restore re-created shows chosen as it is now.
    data["vms"] = list(dict.fromkeys(str((now or vm).pk) for vm, now in job.chosen_vms_now()))
    return data


def _query_dict(data: dict[str, list[str]]) -> QueryDict:
    query = QueryDict(mutable=True)
    for key, values in data.items():
        query.setlist(key, values)
    return query


def _bound(step: str, stored: dict, job_id: int | None):
    form_class = dict((name, cls) for name, _, cls in STEPS)[step]
    kwargs = {"job_id": job_id} if step == "name" else {}
    if step in stored:
        return form_class(_query_dict(stored[step]), **kwargs)
    return form_class(**kwargs)


@editors_only
def wizard(request: HttpRequest, step: str, pk: int | None = None) -> HttpResponse:
    """One step of the wizard for a new job (pk None) or an existing one."""
    if step not in STEP_NAMES:
        raise Http404("No such step")
    job = get_object_or_404(BackupJob, pk=pk) if pk else None
    key = _key(pk)
    if request.GET.get("restart") or key not in request.session:
        request.session[key] = {s: _as_post(job) for s in STEP_NAMES[:-1]} if job else {}
    stored = request.session[key]
    if step == "summary":
        return _summary(request, job, stored)
    form = _bound(step, stored, pk)
    if request.method == "POST":
        posted = {k: request.POST.getlist(k) for k in request.POST if k != "csrfmiddlewaretoken"}
        form = _bound(step, {step: posted}, pk)
        if form.is_valid():
            stored[step] = posted
            request.session[key] = stored
            return redirect(_step_url(STEP_NAMES[STEP_NAMES.index(step) + 1], pk))
    elif step in stored:
        form.errors.clear()  # show what was entered before without shouting at it
    return render(request, "jobs/wizard.html", _context(step, form, job, pk) | _vm_tree(step, form))


def _summary(request: HttpRequest, job: BackupJob | None, stored: dict) -> HttpResponse:
    forms = {}
    for name in STEP_NAMES[:-1]:
        form = _bound(name, stored, job.pk if job else None)
        if not form.is_bound or not form.is_valid():
            messages.error(request, "Complete this step first.")
            return redirect(_step_url(name, job.pk if job else None))
        forms[name] = form
    values = {k: v for form in forms.values() for k, v in form.cleaned_data.items()}
    if request.method == "POST":
        job = _save(job, values)
        request.session.pop(_key(None), None)
        request.session.pop(_key(job.pk), None)
        messages.success(request, f"Saved job {job.name}.")
        return redirect(job.get_absolute_url())
    preview = BackupJob(**{k: v for k, v in values.items() if k != "vms"})
    context = _context("summary", None, job, job.pk if job else None)
    context.update({"preview": preview, "values": values, "vm_names": _vm_names(values)})
    return render(request, "jobs/wizard.html", context)


def _save(job: BackupJob | None, values: dict) -> BackupJob:
    job = job or BackupJob()
    for name in FIELDS_OF_JOB:
        if name in values:
            value = values[name]
            setattr(job, name, list(value) if isinstance(value, list | tuple) else value)
    with transaction.atomic():
        job.save()
        job.vms.set(values.get("vms") or [])
    return job


def _vm_names(values: dict) -> list[str]:
    return [vm.name for vm in values.get("vms") or []]


def _step_url(step: str, pk: int | None) -> str:
    if pk:
        return reverse("jobs:edit", args=[pk, step])
    return reverse("jobs:new", args=[step])


def _context(step: str, form, job, pk) -> dict:
    index = STEP_NAMES.index(step)
    return {
        "form": form, "job": job, "step": step, "title": f"Edit job {job.name}" if job else "New backup job",
        "steps": [{"name": name, "label": label, "url": _step_url(name, pk), "current": name == step,
                   "done": i < index} for i, (name, label, _) in enumerate(STEPS)],
        "previous_url": _step_url(STEP_NAMES[index - 1], pk) if index else None,
    }


def _vm_tree(step: str, form) -> dict:
    """Clusters with their VMs, for the VMs step's tree of checkboxes."""
    if step != "vms":
        return {}
    from inventory.models import Cluster

    chosen = {str(v) for v in (form["vms"].value() or [])}
    clusters = (Cluster.objects.filter(removed=False).select_related("manager").defer("manager__password")
                .prefetch_related("vms"))
    tree = [{"cluster": c, "vms": [{"vm": vm, "checked": str(vm.pk) in chosen}
                                   for vm in c.vms.all() if not vm.removed]} for c in clusters]
    tags = sorted({t for tags in _all_tags() for t in tags})
    return {"tree": [branch for branch in tree if branch["vms"]], "tags": tags}


def _all_tags():
    from inventory.models import VM

    return VM.objects.filter(removed=False).values_list("tags", flat=True)
