"""The restore wizard: VM → restore point → kind of restore → target and options → summary.

Reachable from the navigation (``jobs:restore``), from a VM's page
(``?vm=<inventory VM pk>``) and from a restore point's page (``?point=<pk>``).
VMs no longer in the engine are listed too: their restore points outlive them.
What each step chose is kept in the user's session; the summary re-validates
everything before the restore session is created. Administrators, operators
and restore operators may restore.
"""

from __future__ import annotations

import functools

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Max, Q
from django.http import Http404, HttpRequest, HttpResponse, QueryDict
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse

from jobs.models import RestorePoint
from jobs.models.replaced_vms import current_vm_engine_id
from jobs.restore.forms import (
    DISKS,
    NEW_LOCATION,
    DisksForm,
    KindForm,
    NewLocationForm,
    OriginalLocationForm,
)
from jobs.restore.points import RestoreError
from jobs.restore.requests import DISKS as DISKS_KIND
from jobs.restore.requests import VM as VM_KIND
from jobs.restore.requests import RestoreRequest, submit_restore
from vbrsite.lists import Listing
from vbrsite.roles import ADMINISTRATOR, OPERATOR, RESTORE_OPERATOR, user_has_role

STEPS = (("vm", "VM"), ("point", "Restore point"), ("kind", "Kind of restore"),
         ("target", "Target and options"), ("summary", "Summary"))
STEP_NAMES = [name for name, _ in STEPS]
STATE_KEY = "restore-wizard"


def can_restore(user) -> bool:
    return user_has_role(user, ADMINISTRATOR, OPERATOR, RESTORE_OPERATOR)


def restorers_only(view):
    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        if not can_restore(request.user):
            raise PermissionDenied("Only administrators, operators and restore operators may restore.")
        return view(request, *args, **kwargs)

    return wrapper


def _state(request: HttpRequest) -> dict:
    return request.session.get(STATE_KEY, {})


def _save(request: HttpRequest, state: dict) -> None:
    request.session[STATE_KEY] = state


def _go(step: str) -> HttpResponse:
    return redirect("jobs:restore_step", step=step)


def _number(value: str) -> int:
    """An id from the query string; anything else is a page that doesn't exist."""
    if not value.isdigit():
        raise Http404("no such restore point or VM")
    return int(value)


@restorers_only
def restore(request: HttpRequest) -> HttpResponse:
    """The wizard's entry: start over, at the VM, or at a given VM's or restore point's step."""
    if request.GET.get("point"):
        point = get_object_or_404(RestorePoint.objects.with_vm_key(), pk=_number(request.GET["point"]))
        _save(request, {"vm": point.vm_key, "point": point.pk})
        return _go("kind")
    if request.GET.get("vm"):
        from inventory.models import VM

        vm = get_object_or_404(VM, pk=_number(request.GET["vm"]))
        _save(request, {"vm": current_vm_engine_id(vm.engine_id, vm.manager_id)})
        return _go("point")
    _save(request, {})
    return _go("vm")


@restorers_only
def restore_step(request: HttpRequest, step: str) -> HttpResponse:
    """One step of the wizard."""
    if step not in STEP_NAMES:
        raise Http404("no such step")
    state = _state(request)
    missing = _first_missing(state)
    if STEP_NAMES.index(step) > STEP_NAMES.index(missing):
        return _go(missing)
    handler = {"vm": _step_vm, "point": _step_point, "kind": _step_kind, "target": _step_target,
               "summary": _step_summary}[step]
    return handler(request, state)


def _first_missing(state: dict) -> str:
    for key, step in (("vm", "vm"), ("point", "point"), ("kind", "kind"), ("target", "target")):
        if key not in state:
            return step
    return "summary"


def _render(request: HttpRequest, step: str, state: dict, context: dict) -> HttpResponse:
    reached = STEP_NAMES.index(_first_missing(state))
    steps = [{"name": name, "label": label, "current": name == step,
              "url": reverse("jobs:restore_step", args=[name]), "done": index <= reached}
             for index, (name, label) in enumerate(STEPS)]
    point = RestorePoint.objects.filter(pk=state.get("point")).select_related("repository").first()
    return render(request, f"jobs/restore_step_{step}.html",
                  {"title": "Restore", "steps": steps, "step": step, "state": state, "point": point,
                   **context})


VM_SORTS = {"name": "name", "points": ("points", "name"), "last": ("last", "name")}


def _step_vm(request: HttpRequest, state: dict) -> HttpResponse:
    if request.GET.get("choose"):
        _save(request, {"vm": request.GET["choose"]})
        return _go("point")
    # One row per VM as the engine knows it now: restore points taken before an in-place
    # restore re-created the VM (with a new id) are listed with it.
    rows = RestorePoint.objects.with_vm_key()
    query = request.GET.get("q", "").strip()
    if query:
        # By name, or by any engine id the VM had: the rows of the VMs those ids lead to now.
        keys = RestorePoint.objects.with_vm_key().filter(Q(vm_engine_id=query) | Q(vm_key=query)).values("vm_key")
        rows = rows.filter(Q(vm_name__icontains=query) | Q(vm_key__in=keys))
    rows = rows.values("vm_key").annotate(points=Count("pk"), last=Max("time"), name=Max("vm_name"))
    listing = Listing(request, rows, sorts=VM_SORTS, default_sort="name", tiebreak="vm_key")
    rows = listing.rows
    present = _present_vms([row["vm_key"] for row in rows])
    for row in rows:
        row["in_engine"] = row["vm_key"] in present
    return _render(request, "vm", state, {"rows": rows, "q": query, "listing": listing})


def _present_vms(engine_ids: list[str]) -> set[str]:
    from inventory.models import VM

    return set(VM.objects.filter(engine_id__in=engine_ids, removed=False).values_list("engine_id", flat=True))


def _step_point(request: HttpRequest, state: dict) -> HttpResponse:
    points = RestorePoint.objects.of_vm_key(state["vm"]).select_related("repository")
    if request.GET.get("choose"):
        point = get_object_or_404(points, pk=_number(request.GET["choose"]))
        _save(request, {"vm": state["vm"], "point": point.pk})
        return _go("kind")
    points = list(points.order_by("-time", "-pk"))
    if not points:
        messages.error(request, "That VM has no restore points: choose another.")
        return _go("vm")
    return _render(request, "point", state, {"points": points, "vm_name": points[0].vm_name})


def _step_kind(request: HttpRequest, state: dict) -> HttpResponse:
    form = KindForm(request.POST or None, initial={"kind": state.get("kind")})
    if request.method == "POST" and form.is_valid():
        if form.cleaned_data["kind"] != state.get("kind"):
            state.pop("target", None)
        state["kind"] = form.cleaned_data["kind"]
        _save(request, state)
        return _go("target")
    return _render(request, "kind", state, {"form": form})


def _query(data: dict) -> QueryDict:
    query = QueryDict(mutable=True)
    for key, values in data.items():
        query.setlist(key, values)
    return query


def _point(state: dict) -> RestorePoint:
    point = (RestorePoint.objects.select_related("vm__manager", "repository")
             .defer("vm__manager__password").filter(pk=state["point"]).first())
    if point is None:
        raise Http404("the restore point is gone")
    return point


def _target_form(state: dict, data=None, networks_error: list | None = None):
    point = _point(state)
    manager = point.vm.manager if point.vm_id else None
    if state["kind"] == NEW_LOCATION:
        networks = _source_networks(point, networks_error)
        return NewLocationForm(data, point=point, manager=manager, networks=networks,
                               initial={"name": f"{point.vm_name}_restored"})
    if state["kind"] == DISKS:
        return DisksForm(data, point=point, manager=manager)
    return OriginalLocationForm(data)


def _source_networks(point: RestorePoint, errors: list | None) -> list[str]:
    """The networks the VM's NICs were on, from the restore point's OVF (read from the repository)."""
    from jobs.restore.ovf import read_ovf
    from jobs.restore.points import load_manifest
    from repositories.datamover.client import DataMoverError
    from repositories.store import StoreError
    from vbrsite.secrets import SecretError

    try:
        # A page must not hang on an unreachable data mover: no retries, a short timeout.
        with point.repository.client(timeout=10, retries=0) as client:
            manifest = load_manifest(point, client)
        config = read_ovf(manifest.read_ovf(point.repository.repository_key()))
    except (RestoreError, StoreError, DataMoverError, SecretError) as exc:
        if errors is not None:
            errors.append(f"The VM's networks can't be read ({exc}); NICs go to networks of the same name.")
        return []
    return sorted({nic.network for nic in config.nics if nic.network})


def _step_target(request: HttpRequest, state: dict) -> HttpResponse:
    problems: list[str] = []
    if request.method == "POST":
        form = _target_form(state, request.POST, problems)
        if form.is_valid():
            state["target"] = {key: request.POST.getlist(key) for key in request.POST
                               if key != "csrfmiddlewaretoken"}
            _save(request, state)
            return _go("summary")
    else:
        stored = state.get("target")
        form = _target_form(state, _query(stored) if stored else None, problems)
    return _render(request, "target", state, {"form": form, "problems": problems})


def build_request(state: dict) -> RestoreRequest:
    """The RestoreRequest the wizard's choices make; RestoreError when a step no longer validates."""
    form = _target_form(state, _query(state["target"]))
    if not form.is_valid():
        raise RestoreError("the target and options are no longer valid: go back to that step")
    data, point = form.cleaned_data, _point(state)
    if state["kind"] == DISKS:
        return RestoreRequest(
            point=point.pk, kind=DISKS_KIND, disks=data["disks"], vm=data["vm"].engine_id if data["vm"] else "",
            storage_domain=data["storage_domain"].engine_id if data["storage_domain"] else "",
            disk_format=data["disk_format"], allocation=data["allocation"])
    if state["kind"] == NEW_LOCATION:
        return RestoreRequest(
            point=point.pk, kind=VM_KIND, name=data["name"], cluster=data["cluster"].engine_id,
            storage_domain=data["storage_domain"].engine_id if data["storage_domain"] else "",
            disk_storage_domains=form.disk_storage_domains(), networks=form.network_mapping(),
            new_macs=data["new_macs"], power_on=data["power_on"], disk_format=data["disk_format"],
            allocation=data["allocation"], manager=data["cluster"].manager_id)
    return RestoreRequest(point=point.pk, kind=VM_KIND, name=data["name"], replace=data["replace"],
                          power_on=data["power_on"], new_macs=bool(data["name"]))


def _step_summary(request: HttpRequest, state: dict) -> HttpResponse:
    try:
        restore_request = build_request(state)
        if request.method == "POST":
            session = submit_restore(restore_request, user=request.user)
            _save(request, {})
            messages.success(request, f"Restore session {session.pk} started: {session.name}.")
            return redirect(session.get_absolute_url())
        point = _point(state)
        restore_request.validate(point)
        description = restore_request.describe(point)
    except RestoreError as exc:
        messages.error(request, f"{exc}")
        return _render(request, "summary", state, {"problem": str(exc)})
    return _render(request, "summary", state, {"restore": restore_request, "description": description,
                                               "rows": summary_rows(restore_request, point)})


def _names(model, point: RestorePoint) -> dict[str, str]:
    rows = model.objects.filter(manager_id=point.vm.manager_id) if point.vm_id else model.objects.all()
    return dict(rows.values_list("engine_id", "name"))


def summary_rows(restore: RestoreRequest, point: RestorePoint) -> list[tuple[str, str]]:
    """What the summary lists, with names instead of engine ids."""
    from inventory.models import VM, Cluster, StorageDomain

    domains = _names(StorageDomain, point)
    disks = {d["id"]: d.get("name") or d["id"] for d in point.disks}
    domain = domains.get(restore.storage_domain, restore.storage_domain) or "where each disk was"
    per_disk = [f"{disks.get(d, d)} on {domains.get(sd, sd)}" for d, sd in restore.disk_storage_domains.items()]
    formats = {"cow": "QCOW2", "raw": "raw", "thin": "thin provisioned", "preallocated": "preallocated"}
    shape = ", ".join(formats[v] for v in (restore.disk_format, restore.allocation) if v) or "as each disk was"
    if restore.kind == DISKS_KIND:
        target = _names(VM, point).get(restore.vm, restore.vm)
        return [("Disks", ", ".join(disks.get(d, d) for d in restore.disks)),
                ("Target", f"attached to VM {target}" if restore.vm else "new floating disks"),
                ("Storage domain", domain), ("Format", shape)]
    where = ("In place: the original VM is stopped and replaced once every disk is restored"
             if restore.replace else "A new location" if restore.cluster else "Beside the original")
    rows = [("Where", where), ("Name", restore.name or point.vm_name)]
    if restore.cluster:
        rows.append(("Cluster", _names(Cluster, point).get(restore.cluster, restore.cluster)))
    rows += [("Storage domain", "; ".join([domain, *per_disk])), ("Format", shape)]
    if restore.networks:
        rows.append(("Networks", "; ".join(f"{source} → {target or 'no network'}"
                                           for source, target in restore.networks.items())))
    keep = restore.replace or not restore.new_macs
    rows += [("MAC addresses", "the original's" if keep else "new"),
             ("Power on", "yes" if restore.power_on else "no")]
    return rows
