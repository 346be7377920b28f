"""List restore points, oldest first."""

import json

from django.core.management.base import BaseCommand

from jobs import services
from jobs.management.commands._common import lookup
from jobs.models import RestorePoint


class Command(BaseCommand):
    help = "List restore points, oldest first (--json: id, vm, time, type, state, repository, disks)."

    def add_arguments(self, parser):
        parser.add_argument("--vm", help="only this VM's (name or engine id; removed VMs too), with those "
                            "taken before an in-place restore gave it a new engine id")
        parser.add_argument("--json", action="store_true")

    def handle(self, *args, vm, **options):
        points = RestorePoint.objects.select_related("repository").order_by("time", "pk")
        if vm:
            found = lookup(services.find_vm, vm)
            # With those taken before an in-place restore re-created the VM under a new id.
            points = points.of_vm(found.engine_id)
        records = [p.as_json() for p in points]
        if options["json"]:
            self.stdout.write(json.dumps(records, indent=2))
            return
        self.stdout.write(f"{'ID':>6} {'VM':24} {'TIME':25} {'TYPE':11} {'STATE':9} {'REPOSITORY':16} DISKS")
        for r in records:
            self.stdout.write(f"{r['id']:>6} {r['vm'][:24]:24} {r['time'][:25]:25} {r['type']:11} "
                              f"{r['state']:9} {r['repository'][:16]:16} {len(r['disks'])}")
