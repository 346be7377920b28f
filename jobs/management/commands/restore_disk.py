"""manage.py restore_disk POINT DISK [--vm VM] [--storage-domain SD] [--wait]."""

from jobs.restore.command_base import RestoreCommand
from jobs.restore.requests import DISKS, RestoreRequest


class Command(RestoreCommand):
    help = ("Restore one disk of a restore point as a new floating disk, or attached to an "
            "existing VM (--vm).")

    def add_arguments(self, parser):
        parser.add_argument("point", help="the restore point's id (see list_restore_points --json)")
        parser.add_argument("disk", help="the source disk's engine id or name")
        parser.add_argument("--vm", default="", help="attach the restored disk to this VM (name or id)")
        parser.add_argument("--storage-domain", default="",
                            help="storage domain name or id (default: the original disk's); with --vm, "
                                 "one of the VM's data center")
        self.add_wait_argument(parser)

    def handle(self, *args, point, disk, vm, storage_domain, wait, **options):
        request = RestoreRequest(point=point, kind=DISKS, disks=[disk], vm=vm,
                                 storage_domain=storage_domain)
        self.submit(request, wait)
