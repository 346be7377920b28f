"""`manage.py deploy_worker NAME --cluster C [...]`: create a worker VM and wait for its runner."""

from django.core.management.base import BaseCommand, CommandError

from inventory.models import Cluster, Host, StorageDomain
from workers import deployment
from workers.forms import WorkerForm


def _one(model, what: str, name: str, **filters):
    rows = list(model.objects.filter(name=name, removed=False, **filters))
    if len(rows) == 1:
        return rows[0]
    if not rows:
        known = ", ".join(sorted(model.objects.filter(removed=False, **filters)
                                 .values_list("name", flat=True))) or "none"
        raise CommandError(f"No {what} named {name!r} (known: {known}). Sync the inventory "
                           "(sync_inventory) if it is new.")
    raise CommandError(f"{len(rows)} {what}s are named {name!r}: give --manager too.")


class Command(BaseCommand):
    help = ("Deploy a worker VM into a cluster (through the engine) and wait until its runner "
            "sends its first heartbeat.")

    def add_arguments(self, parser):
        parser.add_argument("name", help="the worker's name (also its VM's host name)")
        parser.add_argument("--cluster", required=True, help="the cluster to deploy into")
        parser.add_argument("--manager", help="the manager of the cluster, when names repeat")
        parser.add_argument("--host", help="preferred host (default: the engine places the VM)")
        parser.add_argument("--cpus", type=int, default=2)
        parser.add_argument("--memory", type=int, default=2048, help="MiB (default 2048)")
        parser.add_argument("--network", default="",
                            help="vNIC profile (name or id) or network name, of the cluster's data center")
        parser.add_argument("--storage-domain",
                            help="storage domain of the worker's boot disk, of the cluster's data center")
        parser.add_argument("--max-tasks", type=int, default=4, help="disks moved at once")
        parser.add_argument("--template", default="Blank",
                            help="engine template to create the VM from (default Blank)")
        parser.add_argument("--no-wait", action="store_true",
                            help="return once the VM is created and started")
        parser.add_argument("--timeout", type=float, default=deployment.READY_TIMEOUT,
                            help="seconds to wait for the first heartbeat")

    def handle(self, *args, **options):
        filters = {"manager__name": options["manager"]} if options["manager"] else {}
        cluster = _one(Cluster, "cluster", options["cluster"], **filters)
        data = {"name": options["name"], "cluster": cluster.pk, "cpus": options["cpus"],
                "memory": options["memory"], "vnic_profile": options["network"],
                "max_tasks": options["max_tasks"], "template": options["template"]}
        if options["host"]:
            data["preferred_host"] = _one(Host, "host", options["host"], manager=cluster.manager).pk
        if options["storage_domain"]:
            data["storage_domain"] = _one(StorageDomain, "storage domain", options["storage_domain"],
                                          manager=cluster.manager).pk
        form = WorkerForm(data)
        if not form.is_valid():
            problems = "; ".join(f"{field}: {' '.join(errors)}" for field, errors in form.errors.items())
            raise CommandError(f"Can't deploy worker {options['name']!r}: {problems}")
        worker = form.save()
        self.stdout.write(f"Deploying worker {worker.name} into cluster {cluster.name} ...")
        try:
            worker = deployment.deploy(worker, wait=not options["no_wait"], timeout=options["timeout"])
        except deployment.DeploymentError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(self.style.SUCCESS(
            f"Worker {worker.name} is {worker.state} (VM {worker.engine_vm_id}, queue {worker.queue})."))
