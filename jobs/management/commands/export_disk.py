"""manage.py export_disk POINT DISK OUTPUT [--format qcow2|raw]: a restore point's disk to a file."""

from django.core.management.base import BaseCommand, CommandError

from jobs.restore.export import FORMATS, export_disk
from jobs.restore.points import RestoreError, get_point
from jobs.restore.terminal import MIB, ProgressLine


class Command(BaseCommand):
    help = ("Write one disk of a restore point to a local sparse raw or qcow2 file, "
            "straight from the repository (no engine involved).")

    def add_arguments(self, parser):
        parser.add_argument("point", help="the restore point's id (see list_restore_points --json)")
        parser.add_argument("disk", help="the source disk's engine id or name")
        parser.add_argument("output", help="the file to create (must not exist)")
        parser.add_argument("--format", choices=FORMATS, default="raw",
                            help="raw (default) or qcow2")

    def handle(self, *args, point, disk, output, format, **options):
        try:
            restore_point = get_point(point)
            progress = ProgressLine(self.stdout) if options.get("verbosity", 1) > 0 else None
            result = export_disk(restore_point, disk, output, format=format,
                                 progress=progress.update if progress else None)
        except RestoreError as exc:
            raise CommandError(str(exc)) from None
        if progress:
            progress.done()
        self.stdout.write(
            f"Exported disk {disk} of restore point {restore_point.pk} ({restore_point}) to "
            f"{result.path} ({result.format}, {result.size:,} bytes; {result.bytes_written:,} bytes "
            f"of data in {result.seconds:.1f} s, {result.rate / MIB:.0f} MiB/s)")
