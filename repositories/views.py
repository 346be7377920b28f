"""Repository pages: the list with capacity and figures, add/edit with Test, detail, gateways."""

from __future__ import annotations

import functools
from collections import defaultdict
from datetime import datetime

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_POST

from repositories.choices import RestorePointState
from repositories.datamover.client import DataMoverError
from repositories.forms import ConnectionTestForm, GatewayForm, RepositoryForm
from repositories.models import GatewayServer, Repository
from repositories.services import RepositoryError, create_repository, refresh_stats, test_connection
from repositories.tasks import request_verification
from vbrsite.lists import Listing, PagedList, SearchForm
from vbrsite.roles import ADMINISTRATOR, OPERATOR, user_has_role


def administrator_required(view):
    """Only the Administrator role may add or change repositories and gateways."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs):
        if not user_has_role(request.user, ADMINISTRATOR):
            raise PermissionDenied("Only administrators may change repositories.")
        return view(request, *args, **kwargs)

    return wrapper


def _can_manage(request: HttpRequest) -> bool:
    return user_has_role(request.user, ADMINISTRATOR)


VMS_PER_PAGE = 20
REPOSITORY_SORTS = {"name": "name", "where": ("path", "name"), "capacity": ("capacity", "name")}
GATEWAY_SORTS = {"name": "name", "address": ("address", "name"), "state": ("state", "name")}


def index(request: HttpRequest) -> HttpResponse:
    """Every repository with its last known figures; each row refreshes itself once loaded."""
    listing = Listing(request, Repository.objects.select_related("gateway"), sorts=REPOSITORY_SORTS,
                      default_sort="name", form=SearchForm(request.GET or None),
                      filters={"q": ("name__icontains", "path__icontains", "gateway__name__icontains")})
    return render(request, "repositories/index.html", {
        "repositories": listing.rows, "listing": listing,
        "can_manage": _can_manage(request), "refresh": True, "title": "Repositories"})


def row(request: HttpRequest, pk: int) -> HttpResponse:
    """One repository's row with figures read from its data mover now."""
    repository = get_object_or_404(Repository.objects.select_related("gateway"), pk=pk)
    error = None
    try:
        refresh_stats(repository)
    except DataMoverError as exc:
        error = str(exc)
    return render(request, "repositories/index_row.html", {
        "repository": repository, "error": error, "can_manage": _can_manage(request)})


@sensitive_post_parameters("token", "passphrase", "passphrase_again")
@administrator_required
def add(request: HttpRequest) -> HttpResponse:
    """Add a repository: a local one gets its chunk store created now."""
    form = RepositoryForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            repository = create_repository(
                data["name"], data["path"], url=data["datamover_url"],
                passphrase=data["passphrase"] if data["encrypt"] else None,
                gateway=data["gateway"], token=data["token"], kind=data["kind"],
                description=data["description"], ca_certificate=data["ca_certificate"],
                capacity=data["capacity"], immutable_days=data["immutable_days"])
        except RepositoryError as exc:
            form.add_error(None, str(exc))
        else:
            where = (f"on {repository.gateway.address}: {repository.gateway_command()}" if repository.gateway
                     else f"manage.py datamover {repository.name}")
            messages.success(request, f"Added repository {repository.name}. Start its data mover {where}")
            return redirect("repositories:index")
    return render(request, "repositories/repository_form.html",
                  {"form": form, "repository": None, "title": "Add repository"})


@sensitive_post_parameters("token")
@administrator_required
def edit(request: HttpRequest, pk: int) -> HttpResponse:
    """Change a repository; the token field stays empty and empty keeps it."""
    repository = get_object_or_404(Repository, pk=pk)
    form = RepositoryForm(request.POST or None, instance=repository)
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, f"Saved repository {repository.name}.")
        return redirect("repositories:index")
    return render(request, "repositories/repository_form.html",
                  {"form": form, "repository": repository, "title": "Edit repository"})


@sensitive_post_parameters("token")
@require_POST
@administrator_required
def test(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    """Reach the data mover with the form's values, write and delete a probe; the result fragment."""
    repository = get_object_or_404(Repository, pk=pk) if pk else None
    form = ConnectionTestForm(request.POST, repository=repository)
    context: dict = {"form": form}
    if form.is_valid():
        try:
            context["result"] = test_connection(**form.connection())
        except ValidationError as exc:
            context["problem"] = " ".join(exc.messages)
    return render(request, "repositories/repository_form_test.html", context)


def detail(request: HttpRequest, pk: int) -> HttpResponse:
    """A repository's restore points per VM, read from its manifests, with sizes and states."""
    repository = get_object_or_404(Repository.objects.select_related("gateway"), pk=pk)
    context = {"repository": repository, "can_manage": _can_manage(request),
               "can_verify": user_has_role(request.user, ADMINISTRATOR, OPERATOR),
               "title": repository.name, "error": None, "vms": []}
    try:
        with repository.client(timeout=10, retries=1) as client:
            summaries = client.list_manifests()
        vms = _restore_points_by_vm(repository, summaries)
        search = request.GET.get("q", "").strip().lower()
        if search:
            vms = [vm for vm in vms if search in vm["name"].lower()]
        context["listing"] = PagedList(request, vms, per_page=VMS_PER_PAGE)
        context["vms"] = context["listing"].rows
        context["search"] = search
    except DataMoverError as exc:
        context["error"] = str(exc)
    return render(request, "repositories/detail.html", context)


def _corrupted_manifest_ids(repository: Repository) -> set[str]:
    """Restore points the last verification found damaged, or the jobs app marked corrupted."""
    corrupted = set(repository.corrupted_restore_points)
    rows = getattr(repository, "restore_points", None)  # jobs.RestorePoint, when installed
    if rows is not None:
        corrupted |= set(rows.filter(state=RestorePointState.CORRUPTED)
                         .values_list("manifest_id", flat=True))
    return corrupted


def _vm_keys(repository: Repository, summaries: list[dict]) -> dict[str, str]:
    """Manifest id -> the id its VM has now on its manager, for VMs an in-place restore re-created
    with a new id (jobs.ReplacedVm, when installed). A manifest the database has no restore point
    row for has no manager: only the links whose manager was removed apply to it."""
    try:
        from jobs.models import ReplacedVm
    except ImportError:
        return {}
    keys = dict(repository.restore_points.with_vm_key().values_list("manifest_id", "vm_key"))
    unknown = {(None, s["vm_id"]) for s in summaries if s.get("vm_id") and s["id"] not in keys}
    now = ReplacedVm.objects.settled().current_ids(unknown)
    for summary in summaries:
        if summary["id"] not in keys and (None, summary.get("vm_id")) in now:
            keys[summary["id"]] = now[(None, summary["vm_id"])]
    return keys


def _restore_points_by_vm(repository: Repository, summaries: list[dict]) -> list[dict]:
    """One group per VM as the engine knows it now (named as in its newest restore point)."""
    corrupted = _corrupted_manifest_ids(repository)
    keys = _vm_keys(repository, summaries)
    by_vm: dict[str, dict] = defaultdict(lambda: {"name": "", "restore_points": []})
    for summary in summaries:
        if "error" in summary:
            state = RestorePointState.DAMAGED
        elif summary["id"] in corrupted:
            state = RestorePointState.CORRUPTED
        else:
            state = RestorePointState.OK
        vm = by_vm[keys.get(summary["id"]) or summary.get("vm_id", "?")]
        vm["name"] = summary.get("vm_name") or summary.get("vm_id") or summary["id"]
        created = summary.get("created")
        vm["restore_points"].append({
            **summary, "state": state, "state_label": state.label,
            "time": datetime.fromisoformat(created) if created else None,
            "stored": summary.get("figures", {}).get("bytes_stored")})
    for vm in by_vm.values():
        vm["restore_points"].reverse()  # newest first on the page
    return sorted(by_vm.values(), key=lambda vm: vm["name"].lower())


@require_POST
def verify(request: HttpRequest, pk: int) -> HttpResponse:
    """Start a verification of every restore point on the control runner."""
    if not user_has_role(request.user, ADMINISTRATOR, OPERATOR):
        raise PermissionDenied("Only administrators and operators may verify repositories.")
    repository = get_object_or_404(Repository, pk=pk)
    request_verification(repository)
    messages.success(request, f"Verification of {repository.name} started: the result shows "
                     "here when it ends (reload).")
    return redirect("repositories:detail", pk=pk)


def gateways(request: HttpRequest) -> HttpResponse:
    """Gateway servers and the repositories whose data movers they run."""
    listing = Listing(request, GatewayServer.objects.prefetch_related("repositories"), sorts=GATEWAY_SORTS,
                      default_sort="name", form=SearchForm(request.GET or None),
                      filters={"q": ("name__icontains", "address__icontains")})
    return render(request, "repositories/gateways.html", {
        "gateways": listing.rows, "listing": listing,
        "can_manage": _can_manage(request), "title": "Gateway servers"})


@administrator_required
def gateway_add(request: HttpRequest) -> HttpResponse:
    form = GatewayForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        gateway = form.save()
        messages.success(request, f"Added gateway server {gateway.name}.")
        return redirect("repositories:gateways")
    return render(request, "repositories/gateway_form.html",
                  {"form": form, "title": "Add gateway server"})
