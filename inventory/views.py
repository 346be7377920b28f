"""Inventory pages: managers (add, edit, test, sync) and the inventory browser."""

from __future__ import annotations

import functools
import json

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Prefetch, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_POST
from django_htmx.http import HttpResponseStopPolling

from inventory.forms import ConnectionTestForm, ManagerForm
from inventory.models import VM, Cluster, DataCenter, Disk, Manager, StorageDomain
from inventory.protection import protection_for
from inventory.services import request_sync, test_connection
from plugin.errors import EngineError
from vbrsite.lists import Listing, SearchForm
from vbrsite.roles import ADMINISTRATOR, user_has_role

PAGE_SIZE = 50
VM_SORTS = {"name": "name", "status": ("status", "name"), "cluster": ("cluster__name", "name"),
            "cpus": ("cpus", "name"), "memory": ("memory", "name")}


def administrator_required(view):
    """Only the Administrator role may change managers."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs):
        if not user_has_role(request.user, ADMINISTRATOR):
            raise PermissionDenied("Only administrators may change managers.")
        return view(request, *args, **kwargs)

    return wrapper


def _can_manage(request: HttpRequest) -> bool:
    return user_has_role(request.user, ADMINISTRATOR)


# Managers


MANAGER_SORTS = {"name": "name", "url": ("url", "name"), "state": ("state", "name"),
                 "vms": ("vm_count", "name"), "last_sync": ("last_sync", "name")}


def managers(request: HttpRequest) -> HttpResponse:
    """Every manager with its state, last sync and counts; searchable, sortable, paginated."""
    rows = Manager.objects.annotate(
        vm_count=Count("vm", filter=Q(vm__removed=False), distinct=True))
    listing = Listing(request, rows, sorts=MANAGER_SORTS, default_sort="name",
                      form=SearchForm(request.GET or None), filters={"q": ("name__icontains", "url__icontains")})
    return render(request, "inventory/managers.html",
                  {"managers": listing.rows, "listing": listing, "can_manage": _can_manage(request),
                   "title": "Managers"})


def manager_row(request: HttpRequest, pk: int) -> HttpResponse:
    """One manager's row, polled while it syncs; 286 stops the polling once it is idle."""
    manager = get_object_or_404(
        Manager.objects.annotate(vm_count=Count("vm", filter=Q(vm__removed=False))), pk=pk)
    response = render(request, "inventory/manager_row.html",
                      {"manager": manager, "can_manage": _can_manage(request)})
    if manager.is_syncing:
        return response
    return HttpResponseStopPolling(response.content)


@sensitive_post_parameters("password")
@administrator_required
def manager_add(request: HttpRequest) -> HttpResponse:
    """Register a manager."""
    return _manager_form(request, Manager())


@sensitive_post_parameters("password")
@administrator_required
def manager_edit(request: HttpRequest, pk: int) -> HttpResponse:
    """Change a manager (the password field stays empty; empty keeps the stored one)."""
    return _manager_form(request, get_object_or_404(Manager, pk=pk))


def _manager_form(request: HttpRequest, manager: Manager) -> HttpResponse:
    form = ManagerForm(request.POST or None, instance=manager)
    if request.method == "POST" and form.is_valid():
        adding = manager.pk is None
        manager = form.save()
        if adding:
            # A new manager is worth nothing until its inventory is read: sync it at once.
            request_sync(manager)
            messages.success(request, f"Saved manager {manager.name}; its first sync has started.")
        else:
            messages.success(request, f"Saved manager {manager.name}.")
        return redirect("inventory:managers")
    return render(request, "inventory/manager_form.html",
                  {"form": form, "manager": manager, "title": "Edit manager" if manager.pk else "Add manager"})


@sensitive_post_parameters("password")
@require_POST
@administrator_required
def manager_test(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    """Test the connection with the form's values, without saving; the result fragment."""
    instance = get_object_or_404(Manager, pk=pk) if pk else Manager()
    form = ConnectionTestForm(request.POST, instance=instance)
    context: dict = {"form": form}
    if form.is_valid():
        try:
            context["info"] = test_connection(form.credentials())
        except EngineError as exc:
            context["error"] = exc
            context["error_kind"] = type(exc).__name__
    return render(request, "inventory/manager_form_test.html", context)


@require_POST
@administrator_required
def manager_sync(request: HttpRequest, pk: int) -> HttpResponse:
    """Enqueue a sync of the manager on the control runner; the row shows it live."""
    manager = get_object_or_404(Manager, pk=pk)
    if not request_sync(manager):
        messages.info(request, f"{manager.name} is syncing already.")
    if request.htmx:
        return manager_row(request, pk)
    return redirect("inventory:managers")


# Inventory browser


def index(request: HttpRequest) -> HttpResponse:
    """Data center → cluster → VMs, with disks, power state, tags and protection; search, filters, sort."""
    vms, filters = _filtered_vms(request)
    listing = Listing(request, vms, sorts=VM_SORTS, default_sort="name", per_page=PAGE_SIZE)
    vm_rows = listing.rows
    protection = protection_for(vm_rows)
    for vm in vm_rows:
        vm.protection = protection.get(vm.pk)
    context = {
        "listing": listing, "page": listing.page, "vms": vm_rows, "filters": filters, "tree": _tree(),
        "managers": Manager.objects.all(), "title": "Inventory",
    }
    template = "inventory/index_results.html" if request.htmx and not request.htmx.boosted else "inventory/index.html"
    return render(request, template, context)


def _filtered_vms(request: HttpRequest):
    get = request.GET
    filters = {key: get.get(key, "").strip() for key in ("q", "manager", "datacenter", "cluster", "status", "tag")}
    filters["removed"] = get.get("removed") == "1"
    disks = Disk.objects.select_related("storage_domain").order_by("name")
    vms = VM.objects.select_related("cluster__data_center", "host", "manager").defer("manager__password")
    if not filters["removed"]:
        vms = vms.filter(removed=False)
        disks = disks.filter(removed=False)
    if filters["q"]:
        vms = vms.filter(Q(name__icontains=filters["q"]) | Q(description__icontains=filters["q"])
                         | Q(engine_id__iexact=filters["q"]))
    for key, lookup in (("manager", "manager_id"), ("datacenter", "cluster__data_center_id"),
                        ("cluster", "cluster_id")):
        if filters[key].isdigit():
            vms = vms.filter(**{lookup: int(filters[key])})
    if filters["status"]:
        vms = vms.filter(status=filters["status"])
    if filters["tag"]:
        vms = vms.filter(tags__contains=[filters["tag"]]) if _json_contains_supported() else vms.filter(
            tags__icontains=json.dumps(filters["tag"]))  # SQLite's JSON text escapes non-ASCII
    return vms.prefetch_related(Prefetch("disks", queryset=disks)), filters


def _json_contains_supported() -> bool:
    from django.db import connection

    return connection.features.supports_json_field_contains


def _tree() -> list[DataCenter]:
    """Data centers with their clusters and VM counts, for the browser's side navigation."""
    clusters = Cluster.objects.filter(removed=False).annotate(
        vm_count=Count("vms", filter=Q(vms__removed=False))).order_by("name")
    domains = StorageDomain.objects.filter(removed=False).order_by("name")
    return list(DataCenter.objects.filter(removed=False).select_related("manager").defer("manager__password")
                .prefetch_related(Prefetch("clusters", queryset=clusters),
                                  Prefetch("storage_domains", queryset=domains))
                .order_by("manager__name", "name"))


def vm_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """One VM: configuration, disks and protection."""
    vm = get_object_or_404(VM.objects.select_related("cluster__data_center", "host", "manager")
                           .defer("manager__password"), pk=pk)
    disks = vm.disks.select_related("storage_domain").order_by("-bootable", "name")
    vm.protection = protection_for([vm]).get(vm.pk)
    return render(request, "inventory/vm_detail.html", {"vm": vm, "disks": disks, "title": vm.name})
