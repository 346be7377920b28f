"""`manage.py remove_worker NAME [--force]`: delete a worker's VM and disks in the engine and forget it."""

from django.core.management.base import BaseCommand, CommandError

from workers import deployment
from workers.choices import DiskTaskState
from workers.models import Worker


class Command(BaseCommand):
    help = ("Remove a worker: stop its runner, delete its VM with the VM's disks in the engine, and "
            "forget it (the Remove button of the Workers page).")

    def add_arguments(self, parser):
        parser.add_argument("name", help="the worker's name (see list_workers)")
        parser.add_argument("--force", action="store_true",
                            help="remove it even while it moves disks (their sessions fail those disks)")

    def handle(self, *args, name: str, force: bool, **options):
        worker = Worker.objects.select_related("manager", "cluster").filter(name=name).first()
        if worker is None:
            known = ", ".join(Worker.objects.order_by("name").values_list("name", flat=True)) or "none"
            raise CommandError(f"No worker named {name!r} (known: {known}).")
        running = worker.disk_tasks.filter(state=DiskTaskState.RUNNING).count()
        if running and not force:
            raise CommandError(f"Worker {name} is moving {running} disk(s): wait until they finish, or "
                               "give --force (their sessions fail those disks).")
        vm = worker.engine_vm_id
        try:
            deployment.remove(worker, force=force)
        except deployment.DeploymentError as exc:
            raise CommandError(str(exc)) from None
        gone = f" and its VM {deployment.vm_name(worker)} ({vm}) with its disks" if vm else ""
        self.stdout.write(self.style.SUCCESS(f"Removed worker {name}{gone}."))
