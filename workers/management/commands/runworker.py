"""`manage.py runworker NAME`: the runner of a worker's queue, on whatever machine hosts it."""

from django.core.management.base import BaseCommand, CommandError

from workers.choices import EMBEDDED_QUEUE
from workers.models import Worker
from workers.runner import Runner


class Command(BaseCommand):
    help = ("Run the worker's django-q2 cluster (Q_CLUSTER_NAME = its queue) and send its "
            "heartbeats. NAME 'embedded' runs the embedded worker's queue.")

    def add_arguments(self, parser):
        parser.add_argument("name", help="the worker's name (see list_workers), or 'embedded'")

    def handle(self, *args, name: str, **options):
        worker = None
        if name != EMBEDDED_QUEUE:
            worker = Worker.objects.filter(name=name).first()
            if worker is None:
                known = ", ".join(Worker.objects.values_list("name", flat=True)) or "none yet"
                raise CommandError(f"No worker named {name!r} (known: {known}). "
                                   "Deploy one with deploy_worker, or run 'runworker embedded'.")
        code = Runner(worker).run()
        if code:
            raise CommandError(f"the worker's qcluster exited with status {code}")
