"""List the VMs of the inventory, as a table or as JSON for scripts."""

import json

from django.core.management.base import BaseCommand

from inventory.management.commands._common import get_manager
from inventory.queries import vm_records


class Command(BaseCommand):
    help = "List VMs with their disks (--json: a list of objects with fixed keys)."

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help="print JSON")
        parser.add_argument("--manager", help="only this manager's VMs")
        parser.add_argument("--removed", action="store_true", help="include VMs gone from the engine")

    def handle(self, *args, manager, removed, **options):
        records = vm_records(get_manager(manager) if manager else None, include_removed=removed)
        if options["json"]:
            self.stdout.write(json.dumps(records, indent=2))
            return
        self.stdout.write(f"{'NAME':30} {'STATUS':12} {'CLUSTER':20} {'CPUS':>4} {'MEMORY':>9} DISKS")
        for vm in records:
            memory = f"{vm['memory'] / 1024**3:.1f} GiB"
            self.stdout.write(f"{vm['name'][:30]:30} {vm['status']:12} {(vm['cluster'] or '-')[:20]:20} "
                              f"{vm['cpus']:>4} {memory:>9} {len(vm['disks'])}")
