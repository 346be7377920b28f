"""manage.py restore_vm POINT [--name NEW] [--cluster C] [--storage-domain SD] [--network SRC=PROFILE ...]
[--power-on] [--replace] [--wait]."""

from django.core.management import CommandError

from jobs.restore.command_base import RestoreCommand
from jobs.restore.requests import VM, RestoreRequest


class Command(RestoreCommand):
    help = ("Restore an entire VM from a restore point: beside the original (another name), as a new "
            "VM elsewhere, or in place of the original (--replace, once every disk is restored).")

    def add_arguments(self, parser):
        parser.add_argument("point", help="the restore point's id (see list_restore_points --json)")
        parser.add_argument("--name", default="",
                            help="the restored VM's name (default: the original's; when the "
                                 "original exists and isn't replaced, <name>_restored)")
        parser.add_argument("--cluster", default="", help="cluster name or id (default: the original's)")
        parser.add_argument("--storage-domain", default="",
                            help="storage domain name or id for every disk (default: each disk's original)")
        parser.add_argument("--network", action="append", default=[], metavar="SOURCE=PROFILE",
                            help="plug the NICs that were on network SOURCE into the vNIC profile PROFILE "
                                 "(name or id; a network's name picks its profile); SOURCE= leaves them "
                                 "unplugged. Repeat for each network; NICs on other networks go to the "
                                 "network of the same name")
        parser.add_argument("--power-on", action="store_true", help="start the VM once restored")
        parser.add_argument("--replace", action="store_true",
                            help="stop and replace the original VM (its name, MACs and place) once "
                                 "every disk is restored")
        self.add_wait_argument(parser)

    def handle(self, *args, point, name, cluster, storage_domain, network, power_on, replace, wait, **options):
        request = RestoreRequest(point=point, kind=VM, name=name, cluster=cluster,
                                 storage_domain=storage_domain, networks=network_mapping(network),
                                 power_on=power_on, replace=replace,
                                 # A new name or cluster is a new location: new MAC addresses.
                                 new_macs=bool(name or cluster), manager=_manager_of_cluster(cluster))
        self.submit(request, wait)


def network_mapping(values: list[str]) -> dict[str, str]:
    """``SOURCE=PROFILE`` options as a mapping; CommandError saying what to write otherwise."""
    mapping: dict[str, str] = {}
    for value in values:
        source, sep, target = value.partition("=")
        if not sep or not source.strip():
            raise CommandError(f"--network {value!r}: write SOURCE=PROFILE (the network in the restore "
                               "point = a vNIC profile or network here), or SOURCE= to leave it unplugged")
        if source.strip() in mapping:
            raise CommandError(f"--network: network {source.strip()!r} is mapped twice")
        mapping[source.strip()] = target.strip()
    return mapping


def _manager_of_cluster(cluster: str) -> int | None:
    """The manager whose inventory has this cluster (by name or id), when exactly one has it.

    Needed only for restore points whose VM is no longer in the inventory; otherwise
    the VM's manager is used.
    """
    from django.db.models import Q

    from inventory.models import Cluster

    if not cluster:
        return None
    managers = set(Cluster.objects.filter(Q(name=cluster) | Q(engine_id=cluster), removed=False)
                   .values_list("manager_id", flat=True))
    return managers.pop() if len(managers) == 1 else None
