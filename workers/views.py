"""Workers pages: the list with states, tasks and throughput; a worker; deploy; start, stop,
redeploy and remove (Administrator only)."""

from __future__ import annotations

import functools

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST
from django_htmx.http import HttpResponseStopPolling

from vbrsite.lists import Listing, SearchForm
from vbrsite.roles import ADMINISTRATOR, user_has_role
from workers.choices import DISK_TASK_ACTIVE_STATES, WORKER_IDLE_STATES, DiskTaskState, WorkerState
from workers.deployment import DeploymentError
from workers.forms import ConfirmForm, WorkerForm
from workers.models import DiskTask, Worker
from workers.services import embedded_record, request_action

CONFIRMED_ACTIONS = {"stop": "Stop", "redeploy": "Redeploy", "remove": "Remove"}
RECENT_TASKS = 20


def administrator_required(view):
    """Only the Administrator role may change workers."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs):
        if not user_has_role(request.user, ADMINISTRATOR):
            raise PermissionDenied("Only administrators may change workers.")
        return view(request, *args, **kwargs)

    return wrapper


def _workers():
    return Worker.objects.select_related("manager", "cluster", "preferred_host", "storage_domain")


WORKER_SORTS = {"name": "name", "cluster": ("cluster__name", "name"), "state": ("state", "name"),
                "heartbeat": ("last_heartbeat", "name")}


def _rows(workers) -> list[dict]:
    rows = []
    for worker in workers:
        active = worker.active_tasks()
        rows.append({"worker": worker, "active": active.count(), "throughput": worker.throughput()})
    return rows


def _busy(rows: list[dict], embedded: dict) -> bool:
    """Something is going on: keep polling."""
    moving = embedded["active_tasks"] or any(r["active"] for r in rows)
    changing = any(r["worker"].state not in (*WORKER_IDLE_STATES, WorkerState.READY) for r in rows)
    return bool(moving or changing)


def _table_context(request: HttpRequest) -> dict:
    listing = Listing(request, _workers(), sorts=WORKER_SORTS, default_sort="name",
                      form=SearchForm(request.GET or None),
                      filters={"q": ("name__icontains", "cluster__name__icontains", "manager__name__icontains")})
    rows, embedded = _rows(listing.rows), embedded_record()
    tasks = (DiskTask.objects.filter(state__in=DISK_TASK_ACTIVE_STATES)
             .select_related("worker").order_by("created"))
    return {"rows": rows, "listing": listing, "embedded": embedded, "tasks": tasks, "polling": _busy(rows, embedded),
            "can_manage": user_has_role(request.user, ADMINISTRATOR)}


def index(request: HttpRequest) -> HttpResponse:
    """Every worker with its state, current tasks and throughput; the embedded worker last."""
    return render(request, "workers/index.html", {"title": "Workers", **_table_context(request)})


def index_table(request: HttpRequest) -> HttpResponse:
    """The table, polled every 2 s while workers change state or move disks; 286 stops it."""
    context = _table_context(request)
    response = render(request, "workers/index_table.html", context)
    return response if context["polling"] else HttpResponseStopPolling(response.content)


def detail(request: HttpRequest, pk: int) -> HttpResponse:
    """One worker: its settings, state, last error and recent disk tasks."""
    worker = get_object_or_404(_workers(), pk=pk)
    tasks = worker.disk_tasks.order_by("-created")[:RECENT_TASKS]
    running = worker.disk_tasks.filter(state=DiskTaskState.RUNNING).count()
    queued = worker.disk_tasks.filter(state=DiskTaskState.PENDING).exists()
    polling = bool(running) or queued or worker.state not in (*WORKER_IDLE_STATES, WorkerState.READY)
    context = {"title": f"Worker {worker.name}", "worker": worker, "tasks": tasks,
               "running": running, "polling": polling, "actions": CONFIRMED_ACTIONS,
               "can_manage": user_has_role(request.user, ADMINISTRATOR)}
    if not request.htmx:
        return render(request, "workers/detail.html", context)
    # The body, polled every 2 s while the worker changes state or moves disks.
    response = render(request, "workers/detail_body.html", context)
    return response if polling else HttpResponseStopPolling(response.content)


@administrator_required
def deploy(request: HttpRequest) -> HttpResponse:
    """The deploy form: cluster, host, CPUs, memory, network, storage domain, max tasks."""
    form = WorkerForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        worker = form.save()
        request_action(worker, "deploy")
        messages.success(request, f"Deploying worker {worker.name}: the VM is being created.")
        return redirect(worker)
    return render(request, "workers/deploy.html", {"title": "Deploy a worker", "form": form})


@require_POST
@administrator_required
def start(request: HttpRequest, pk: int) -> HttpResponse:
    """Power a stopped (or failed) worker on."""
    worker = get_object_or_404(Worker, pk=pk)
    request_action(worker, "start" if worker.engine_vm_id else "deploy")
    messages.success(request, f"Starting worker {worker.name}.")
    return redirect(worker)


def _requested(worker: Worker, action: str, form: ConfirmForm) -> bool:
    """Request the action; False, with the reason on the form, when the stop is refused."""
    try:
        request_action(worker, action, force=form.cleaned_data["force"])
    except DeploymentError as exc:  # it took a disk since it was counted above
        form.add_error("force", str(exc))
        return False
    return True


@administrator_required
def confirm(request: HttpRequest, pk: int, action: str) -> HttpResponse:
    """Stop, redeploy or remove, after the administrator confirms."""
    if action not in CONFIRMED_ACTIONS:
        raise PermissionDenied(f"unknown action {action}")
    worker = get_object_or_404(_workers(), pk=pk)
    running = worker.disk_tasks.filter(state=DiskTaskState.RUNNING).count()
    form = ConfirmForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        if running and not form.cleaned_data["force"] and action != "redeploy":
            form.add_error("force", f"The worker is moving {running} disk(s) right now.")
        elif running and action == "redeploy":
            form.add_error(None, "Wait until the worker's disks are moved before redeploying it.")
        elif _requested(worker, action, form):
            messages.success(request, f"{CONFIRMED_ACTIONS[action]} of worker {worker.name} requested.")
            return redirect(reverse("workers:index") if action == "remove" else worker.get_absolute_url())
    return render(request, "workers/confirm.html", {
        "title": f"{CONFIRMED_ACTIONS[action]} worker {worker.name}", "worker": worker,
        "action": action, "label": CONFIRMED_ACTIONS[action], "form": form, "running": running,
    })
