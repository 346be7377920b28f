"""List restore points, oldest first."""

import json

from django.core.management.base import BaseCommand, CommandError

from jobs import services
from jobs.management.commands._common import lookup
from jobs.models import RestorePoint
from vbrsite.times import stamp


class Command(BaseCommand):
    help = "List restore points, oldest first (--json: id, vm, time, type, state, repository, disks)."

    def add_arguments(self, parser):
        parser.add_argument("--vm", help="only this VM's (name or engine id; removed VMs too, and VMs "
                            "of removed managers by the name their restore points recorded), with those "
                            "taken before an in-place restore gave it a new engine id")
        parser.add_argument("--json", action="store_true")

    def handle(self, *args, vm, **options):
        points = RestorePoint.objects.select_related("repository").order_by("time", "pk")
        if vm:
            # With those taken before an in-place restore re-created the VM under a new id.
            points = _points_of(points, vm)
        if options["json"]:
            self.stdout.write(json.dumps([p.as_json() for p in points], indent=2))
            return
        self.stdout.write(f"{'ID':>6} {'VM':24} {'TIME':25} {'TYPE':11} {'STATE':9} {'REPOSITORY':16} DISKS")
        for p in points:  # the time as the pages show it (the JSON keeps ISO 8601 in UTC)
            self.stdout.write(f"{p.pk:>6} {p.vm_name[:24]:24} {stamp(p.time):25} {p.type:11} "
                              f"{p.state:9} {p.repository.name[:16]:16} {len(p.disks)}")


def _points_of(points, text: str):
    """The restore points of the VM named ``text`` (or with that id) in the inventory, else as its
    restore points recorded it (a VM whose manager was removed is in no inventory)."""
    try:
        vm = services.find_vm(text)
    except services.VmNotInInventory:
        return points.of_vm_key(lookup(services.vm_of_restore_points, text))
    except services.LookupError_ as exc:
        raise CommandError(str(exc)) from None
    return points.of_vm(vm.engine_id, vm.manager_id)
