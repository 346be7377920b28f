"""Link the VMs restored in place before links were recorded (or whose link a lost answer kept
from being recorded).

Each ended restore session keeps what it was asked (``options.restore``: ``replace``,
``point``, ``manager``) and what it created (``options.created``: ``vms``, and
``kept``, set once the original's removal was accepted). Replayed in session order
through the chain logic restores use (a restore from an older restore point replaced
the VM as the earlier links had it then): the original is the restore point's VM as
linked so far, the VM in its place the one the session created. Skipped: sessions
with a link already, restores beside the original or of disks, a VM that came back
as itself, and a failed or cancelled restore unless the inventory saw its original go.
"""

from django.db import migrations, transaction


def manager_of_restore(options: dict, managers: set, RestorePoint) -> int | None:
    """The manager a restore session restored into (0005's, frozen here with this migration)."""
    request = options.get("restore") or {}
    if request.get("manager"):
        return request["manager"] if request["manager"] in managers else None
    point = RestorePoint.objects.filter(pk=request.get("point")).select_related("vm").first()
    return point.vm.manager_id if point is not None and point.vm_id else None


def record_link(model, manager_id, old_engine_id, engine_id, **fields):
    """ReplacedVm.record's chain logic as it was when this migration was written: frozen here,
    so later changes to the app's code can't change (or break) what this migration does."""
    links = model.objects.filter(manager_id=manager_id)
    with transaction.atomic():
        engine_id = links.filter(old_engine_id=engine_id).values_list("engine_id", flat=True).first() \
            or engine_id
        if engine_id == old_engine_id:
            return
        links.filter(engine_id=old_engine_id).update(engine_id=engine_id)
        model.objects.update_or_create(manager_id=manager_id, old_engine_id=old_engine_id,
                                       defaults={"engine_id": engine_id, **fields})


ENDED = ("success", "warning", "failed", "cancelled")
RESTORED = ("success", "warning")  # ended with the original confirmed gone


def replacement(session, managers: set, apps) -> tuple | None:
    """(manager, old engine id, new engine id, name) of the VM the session replaced, if it tells."""
    RestorePoint = apps.get_model("jobs", "RestorePoint")
    options = session.options or {}
    request, created = options.get("restore") or {}, options.get("created") or {}
    if request.get("kind", "vm") != "vm" or not request.get("replace") or not created.get("kept") \
            or not created.get("vms"):
        return None
    point = RestorePoint.objects.filter(pk=request.get("point")).first()
    if point is None:
        return None
    manager_id = manager_of_restore(options, managers, RestorePoint)
    links = apps.get_model("jobs", "ReplacedVm").objects.filter(manager_id=manager_id)
    old = links.filter(old_engine_id=point.vm_engine_id).values_list("engine_id", flat=True).first() \
        or point.vm_engine_id
    new = created["vms"][0]
    if new in (old, point.vm_engine_id):
        return None  # the original was gone: the VM came back as itself
    if session.state not in RESTORED and not apps.get_model("inventory", "VM").objects.filter(
            manager_id=manager_id, engine_id=old, removed=True).exists():
        return None  # the removal may never have come
    return manager_id, old, new, point.vm_name


def backfill(apps, schema_editor):
    Session = apps.get_model("jobs", "Session")
    ReplacedVm = apps.get_model("jobs", "ReplacedVm")
    managers = set(apps.get_model("inventory", "Manager").objects.values_list("pk", flat=True))
    linked = set(ReplacedVm.objects.exclude(session=None).values_list("session_id", flat=True))
    sessions = (Session.objects.filter(kind="restore", state__in=ENDED, options__has_key="created")
                .exclude(pk__in=linked).order_by("pk"))
    for session in sessions.iterator():
        found = replacement(session, managers, apps)
        if found is not None:
            manager_id, old, new, name = found
            record_link(ReplacedVm, manager_id, old, new, vm_name=name, session_id=session.pk,
                        time=session.finished or session.created)


class Migration(migrations.Migration):

    dependencies = [
        ('jobs', '0005_replaced_vm_manager'),
    ]

    operations = [
        migrations.RunPython(backfill, migrations.RunPython.noop),
    ]
