"""Links between the engine ids of VMs restored in place are per manager.

Existing links get the manager of the restore that recorded them: the one the
restore was asked to use, else its restore point's VM's. A link whose session was
deleted gets the one manager whose inventory has its old VM, if only one has it.
The data step comes last: on PostgreSQL, a table can't be altered in the
transaction that updated it with deferred foreign key checks still pending.
"""

import django.db.models.deletion
from django.db import migrations, models


def manager_of_restore(options: dict, managers: set, RestorePoint) -> int | None:
    """The manager a restore session restored into; None when it can't be told (or was removed)."""
    request = options.get("restore") or {}
    if request.get("manager"):
        return request["manager"] if request["manager"] in managers else None
    point = RestorePoint.objects.filter(pk=request.get("point")).select_related("vm").first()
    return point.vm.manager_id if point is not None and point.vm_id else None


def fill_managers(apps, schema_editor):
    ReplacedVm = apps.get_model("jobs", "ReplacedVm")
    RestorePoint = apps.get_model("jobs", "RestorePoint")
    Manager = apps.get_model("inventory", "Manager")
    VM = apps.get_model("inventory", "VM")
    managers = set(Manager.objects.values_list("pk", flat=True))
    for link in ReplacedVm.objects.select_related("session"):
        if link.session is not None:
            manager_id = manager_of_restore(link.session.options or {}, managers, RestorePoint)
        else:
            owners = set(VM.objects.filter(engine_id=link.old_engine_id).values_list("manager_id", flat=True))
            manager_id = owners.pop() if len(owners) == 1 else None
        if manager_id is not None:
            ReplacedVm.objects.filter(pk=link.pk).update(manager_id=manager_id)


def keep_one_link_per_old_id(apps, schema_editor):
    """Back to one link per old engine id (unique again before 0005): the newest is kept."""
    ReplacedVm = apps.get_model("jobs", "ReplacedVm")
    seen = set()
    for link in ReplacedVm.objects.order_by("-pk"):
        if link.old_engine_id in seen:
            link.delete()
        seen.add(link.old_engine_id)


class Migration(migrations.Migration):

    dependencies = [
        ('inventory', '0003_manager_inventory_read_at'),
        ('jobs', '0004_restorepoint_vm_engine_id_index'),
    ]

    operations = [
        migrations.AddField(
            model_name='replacedvm',
            name='manager',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL,
                                    related_name='replaced_vms', to='inventory.manager'),
        ),
        migrations.AlterField(
            model_name='replacedvm',
            name='old_engine_id',
            field=models.CharField(max_length=64),
        ),
        migrations.AddConstraint(
            model_name='replacedvm',
            constraint=models.UniqueConstraint(fields=('old_engine_id', 'manager'),
                                               name='replacedvm_unique_old_engine_id'),
        ),
        migrations.RunPython(fill_managers, keep_one_link_per_old_id),
    ]
