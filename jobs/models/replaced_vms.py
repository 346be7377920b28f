"""VMs an in-place restore re-created, and the one place that follows a VM from an id it had to its id now.

An in-place restore removes the original VM, and the engine gives the restored VM
a new id; restore points, jobs and the inventory knew the old one. Links are per
manager: engines that share a replicated storage domain (oVirt disaster recovery)
know a VM by the same id, and a restore on one of them replaces nothing on the
other. A link whose manager was removed since (``manager`` None) serves only
look-ups that have no manager either: restore points whose VM left the inventory
with its manager.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db import models, transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from jobs.choices import ACTIVE_STATES, TERMINAL_STATES, SessionKind

Key = tuple[int | None, str]  # (manager pk, engine id); None: a manager removed since


class ReplacedVmQuerySet(models.QuerySet):
    """Links between the engine ids of VMs restored in place."""

    def settled(self) -> ReplacedVmQuerySet:
        """The links to a VM whose in-place restore has ended.

        A restore records its link once the original is gone, and then still renames the
        VM in its place, adds its NICs and starts it: until the session ends, jobs must not
        back that VM up, nor anything else take it for the VM. That holds for the links an
        earlier restore recorded and this one moved along to it too. A session whose driver
        died is ended by reconcile, so no link waits for good.
        """
        return self.exclude(session__state__in=ACTIVE_STATES).exclude(Exists(_restoring()))

    def restoring(self) -> ReplacedVmQuerySet:
        """The links to a VM an in-place restore still running is finishing (the others are settled)."""
        return self.filter(Q(session__state__in=ACTIVE_STATES) | Exists(_restoring()))

    def current_ids(self, keys: Iterable[Key]) -> dict[Key, str]:
        """(manager, engine id) -> the engine id that VM has now, for the keys an in-place
        restore replaced (the others are left out)."""
        return self._links(keys, "old_engine_id")

    def earlier_ids(self, keys: Iterable[Key]) -> dict[Key, str]:
        """(manager, old engine id) -> engine id now, for the VMs whose id now is one of ``keys``."""
        return self._links(keys, "engine_id")

    def _links(self, keys: Iterable[Key], by: str) -> dict[Key, str]:
        keys = set(keys)
        if not keys:
            return {}
        rows = self.filter(**{f"{by}__in": {engine_id for _, engine_id in keys}}).values_list(
            "manager_id", "old_engine_id", "engine_id")
        matched = 1 if by == "old_engine_id" else 2
        return {(row[0], row[1]): row[2] for row in rows if (row[0], row[matched]) in keys}


def _restoring():
    """For a link of an outer query: the running restores that lead to the same VM."""
    return ReplacedVm.objects.filter(session__state__in=ACTIVE_STATES, manager=OuterRef("manager"),
                                     engine_id=OuterRef("engine_id"))


class ReplacedVm(models.Model):
    """A VM an in-place restore removed, and the engine id of the VM that took its place.

    Restore points keep the id their VM had when they were taken. This row says
    that the restore points of ``old_engine_id`` on ``manager`` are the VM's now
    known there as ``engine_id``. ``engine_id`` is always the latest id: recording
    a replacement moves the rows of the ids replaced before along, so one look-up
    resolves a VM replaced many times. ``session`` is the restore that replaced it.
    """

    manager = models.ForeignKey("inventory.Manager", null=True, blank=True, on_delete=models.SET_NULL,
                                related_name="replaced_vms")
    old_engine_id = models.CharField(max_length=64)
    engine_id = models.CharField(max_length=64, db_index=True)
    vm_name = models.CharField(max_length=255)
    session = models.ForeignKey("jobs.Session", null=True, blank=True, on_delete=models.SET_NULL,
                                related_name="replaced_vms")
    time = models.DateTimeField(default=timezone.now)

    objects = ReplacedVmQuerySet.as_manager()

    class Meta:
        verbose_name = "replaced VM"
        # One link per old id and manager; old_engine_id first, so the index serves look-ups by it.
        constraints = [models.UniqueConstraint(fields=["old_engine_id", "manager"],
                                               name="replacedvm_unique_old_engine_id")]

    def __str__(self) -> str:
        return f"{self.vm_name}: {self.old_engine_id} replaced by {self.engine_id}"

    @classmethod
    def record(cls, manager_id: int | None, old_engine_id: str, engine_id: str, *, vm_name: str,
               session=None) -> None:
        """Note that an in-place restore on the manager replaced the VM ``old_engine_id`` by ``engine_id``."""
        record_link(cls, manager_id, old_engine_id, engine_id,
                    vm_name=vm_name, session=session, time=timezone.now())


def record_link(model, manager_id: int | None, old_engine_id: str, engine_id: str, **fields) -> None:
    """The chain logic of ``ReplacedVm.record``, on ``model`` (a migration's historical model too).

    Links that led to the replaced VM lead to the new one. A new id that is itself
    linked further (only when past restores are replayed out of order) is followed.
    """
    links = model.objects.filter(manager_id=manager_id)  # None: IS NULL
    with transaction.atomic():
        engine_id = links.filter(old_engine_id=engine_id).values_list("engine_id", flat=True).first() \
            or engine_id
        if engine_id == old_engine_id:
            return
        links.filter(engine_id=old_engine_id).update(engine_id=engine_id)
        model.objects.update_or_create(manager_id=manager_id, old_engine_id=old_engine_id,
                                       defaults={"engine_id": engine_id, **fields})


def link_originals_gone(manager_id: int) -> list[ReplacedVm]:
    """Record the links of ended in-place restores on the manager whose original the inventory
    now has removed, but which recorded none: the engine accepted the removal (``kept`` in the
    session's ``options.created``) and the original went only after the restore gave up waiting.
    The rule migration 0006 applies to sessions of earlier versions; the links made."""
    from jobs.models import Session

    linked = ReplacedVm.objects.exclude(session=None).values("session_id")
    sessions = (Session.objects.filter(kind=SessionKind.RESTORE, state__in=TERMINAL_STATES,
                                       options__created__kept=True, options__restore__replace=True)
                .exclude(pk__in=linked).order_by("pk"))
    made = []
    for session in sessions:
        found = _replaced_by(session, manager_id)
        if found is not None:
            old, new, name = found
            ReplacedVm.record(manager_id, old, new, vm_name=name, session=session)
            made.append(ReplacedVm.objects.get(manager_id=manager_id, old_engine_id=old))
    return made


def _replaced_by(session, manager_id: int) -> tuple[str, str, str] | None:
    """(original's engine id, restored VM's, name) when the restore ``session`` replaced a VM on
    the manager that the inventory has seen go; None otherwise."""
    from inventory.models import VM
    from jobs.models import RestorePoint

    request, created = session.options.get("restore") or {}, session.options.get("created") or {}
    point = RestorePoint.objects.filter(pk=request.get("point")).select_related("vm").first()
    if request.get("kind", "vm") != "vm" or not created.get("vms") or point is None:
        return None
    if (request.get("manager") or (point.vm.manager_id if point.vm_id else None)) != manager_id:
        return None
    old, new = current_vm_engine_id(point.vm_engine_id, manager_id, settled=False), created["vms"][0]
    if new in (old, point.vm_engine_id):
        return None  # the original was gone before: the VM came back as itself
    if not VM.objects.filter(manager_id=manager_id, engine_id=old, removed=True).exists():
        return None  # not seen gone (yet): the removal may never have come
    return old, new, point.vm_name


def current_vm_engine_id(engine_id: str, manager_id: int | None, *, settled: bool = True) -> str:
    """The engine id the VM has now on the manager (an in-place restore gave it a new one), else ``engine_id``.

    ``settled`` False follows the links of in-place restores still finishing too: restore code
    must, or a restore started meanwhile re-creates (or replaces) a VM by an id that is gone."""
    links = ReplacedVm.objects.settled() if settled else ReplacedVm.objects.all()
    return links.current_ids([(manager_id, engine_id)]).get((manager_id, engine_id), engine_id)


def current_vm_row(manager_id: int | None, engine_id: str, *, settled: bool = True):
    """The inventory row of the VM that has or had ``engine_id`` on the manager, as the engine
    has it now; None when the inventory has no such VM in the engine (deleted, or not synced yet)."""
    key = (manager_id, current_vm_engine_id(engine_id, manager_id, settled=settled))
    return _live_rows([key]).get(key)


def vms_now(vms: list) -> list:
    """Each inventory VM as the engine has it now: itself; for one an in-place restore re-created,
    the VM in its place once the inventory has it; else None (gone)."""
    gone = [(vm.manager_id, vm.engine_id) for vm in vms if vm.removed]
    now = ReplacedVm.objects.settled().current_ids(gone)
    rows = _live_rows((manager_id, engine_id) for (manager_id, _), engine_id in now.items())
    return [vm if not vm.removed else rows.get((vm.manager_id, now.get((vm.manager_id, vm.engine_id))))
            for vm in vms]


def _live_rows(keys: Iterable[Key]) -> dict[Key, object]:
    """The inventory rows of VMs the engine has, by (manager, engine id)."""
    from inventory.models import VM

    keys = {key for key in keys if key[0] is not None}
    if not keys:
        return {}
    rows = (VM.objects.filter(removed=False, engine_id__in={engine_id for _, engine_id in keys})
            .select_related("manager", "cluster").defer("manager__password"))
    return {(vm.manager_id, vm.engine_id): vm for vm in rows if (vm.manager_id, vm.engine_id) in keys}
