"""The jobs list, a job's page, and its actions: run, run full, enable, disable, delete."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST
from django_htmx.http import HttpResponseClientRedirect

from jobs import services
from jobs.choices import ACTIVE_STATES
from jobs.models import BackupJob, Session
from jobs.models.jobs import vm_counts
from jobs.views.access import can_edit, can_run, editors_only, runners_only
from vbrsite.lists import Listing, SearchForm


def _rows(jobs, counts: dict[int, int] | None = None) -> list[dict]:
    """Each job with its last session, next run and how many VMs it selects now."""
    counts = vm_counts(jobs) if counts is None else counts
    rows = []
    for job in jobs:
        last = job.sessions.order_by("-created").first()
        rows.append({"job": job, "last": last, "next_run": job.next_run(),
                     "vm_count": counts[job.pk],
                     "running": last is not None and last.state in ACTIVE_STATES})
    return rows


JOB_SORTS = {"name": "name", "repository": ("repository__name", "name"), "created": "created"}


def index(request: HttpRequest) -> HttpResponse:
    """Every backup job: last result, next run, VM count, and the actions the user may take."""
    jobs = BackupJob.objects.select_related("repository", "cluster").prefetch_related("vms")
    listing = Listing(request, jobs, sorts=JOB_SORTS, default_sort="name",
                      form=SearchForm(request.GET or None),
                      filters={"q": ("name__icontains", "description__icontains", "tag__icontains")})
    return render(request, "jobs/index.html", {
        "rows": _rows(listing.rows), "listing": listing, "can_edit": can_edit(request.user),
        "can_run": can_run(request.user), "title": "Backup jobs"})


def detail(request: HttpRequest, pk: int) -> HttpResponse:
    """One job: what, where, when, and its recent sessions and restore points."""
    job = get_object_or_404(BackupJob.objects.select_related("repository", "cluster"), pk=pk)
    vms = job.resolve_vms()
    return render(request, "jobs/detail.html", {
        "job": job, "row": _rows([job], {job.pk: len(vms)})[0], "vms": vms,
        "sessions": job.sessions.order_by("-created")[:20],
        "points": job.restore_points.select_related("repository").order_by("-time")[:20],
        "can_edit": can_edit(request.user), "can_run": can_run(request.user), "title": job.name})


def _local(request: HttpRequest, url: str | None) -> str | None:
    """``url`` when it points into this site (a ``next`` field can't send anyone elsewhere)."""
    if url and url_has_allowed_host_and_scheme(url, allowed_hosts={request.get_host()},
                                               require_https=request.is_secure()):
        return url
    return None


def _back(request: HttpRequest, job: BackupJob, session: Session | None = None) -> HttpResponse:
    target = session.get_absolute_url() if session else _local(request, request.POST.get("next")) \
        or job.get_absolute_url()
    if request.htmx:
        return HttpResponseClientRedirect(target)
    return redirect(target)


@require_POST
@runners_only
def job_run(request: HttpRequest, pk: int) -> HttpResponse:
    """Run now (``full=1``: read every disk in full); then the session's live page."""
    job = get_object_or_404(BackupJob, pk=pk)
    running = services.running_session_of(job)
    if running is not None:
        messages.info(request, f"{job.name} is running already.")
        return _back(request, job, running)
    session = services.run_job(job, full=request.POST.get("full") == "1", user=request.user)
    messages.success(request, f"Started {'a full backup of ' if session.full else ''}{job.name}.")
    return _back(request, job, session)


@require_POST
@runners_only
def job_enable(request: HttpRequest, pk: int) -> HttpResponse:
    """Enable (``enabled=1``) or disable the job's schedule."""
    job = get_object_or_404(BackupJob, pk=pk)
    job.enabled = request.POST.get("enabled") == "1"
    job.save(update_fields=["enabled", "modified"])
    messages.success(request, f"{job.name} is {'enabled' if job.enabled else 'disabled'}.")
    return _back(request, job)


@editors_only
def job_delete(request: HttpRequest, pk: int) -> HttpResponse:
    """Delete the job after confirmation; its restore points stay (retention no longer applies)."""
    job = get_object_or_404(BackupJob, pk=pk)
    running = services.running_session_of(job)
    if request.method == "POST" and running is not None:
        # Its VMs would fail recording their restore points, and their manifests would stay unlisted.
        messages.error(request, f"{job.name} is running (session {running.pk}): cancel the session "
                                "or let it end, then delete the job.")
        return _back(request, job, running)
    if request.method == "POST":
        name = job.name
        job.delete()
        messages.success(request, f"Deleted job {name}. Its restore points are kept.")
        return redirect("jobs:index")
    return render(request, "jobs/delete.html", {"job": job, "running": running, "title": f"Delete {job.name}"})
