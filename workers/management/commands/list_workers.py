"""`manage.py list_workers [--json]`: the workers, their state and their tasks."""

import json

from django.core.management.base import BaseCommand

from vbrsite.times import stamp
from workers.models import Worker
from workers.services import embedded_record, worker_record


class Command(BaseCommand):
    help = ("List the workers with state, tasks and throughput (--json: a list of objects; "
            "the embedded worker is the last one, with name 'embedded').")

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help="print JSON")

    def handle(self, *args, **options):
        workers = list(Worker.objects.select_related("manager", "cluster", "preferred_host",
                                                     "storage_domain"))
        records = [*(worker_record(w) for w in workers), embedded_record()]
        if options["json"]:
            self.stdout.write(json.dumps(records, indent=2))
            return
        self.stdout.write(f"{'NAME':20} {'STATE':12} {'CLUSTER':16} {'TASKS':>7} {'MB/S':>7} "
                          f"{'VERSION':10} LAST HEARTBEAT")
        beats = [w.last_heartbeat for w in workers] + [None]  # the embedded worker keeps none
        for r, beat in zip(records, beats, strict=True):
            tasks = f"{r['active_tasks']}/{r['max_tasks'] or '-'}"  # the embedded worker has no max
            self.stdout.write(
                f"{r['name'][:20]:20} {r.get('state', 'ready'):12} {(r.get('cluster') or '-')[:16]:16} "
                f"{tasks:>7} {r['throughput'] / 1e6:>7.1f} {(r.get('software_version') or '-')[:10]:10} "
                f"{stamp(beat) if beat else '-'}")
