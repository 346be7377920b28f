"""manage.py collect_garbage NAME: remove chunks no restore point references."""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from repositories.datamover.client import DataMoverError
from repositories.management.commands.verify_repository import get_repository
from repositories.services import collect_garbage


class Command(BaseCommand):
    help = ("Remove chunks no restore point references. Chunks younger than the grace "
            "period, or written while a backup is in progress, are kept.")

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument("--grace-hours", type=float, default=None,
                            help=f"spare chunks younger than this (default VBR_GC_GRACE_HOURS, "
                                 f"{settings.GC_GRACE_HOURS})")
        parser.add_argument("--dry-run", action="store_true", help="count, don't delete")

    def handle(self, *args, name, grace_hours, dry_run, **options):
        repository = get_repository(name)
        grace = settings.GC_GRACE_HOURS if grace_hours is None else grace_hours
        if grace < 0:
            raise CommandError("--grace-hours can't be negative")
        try:
            report = collect_garbage(repository, grace * 3600, dry_run,
                                     progress=lambda p: self.stdout.write(f"  {p['message']}"))
        except DataMoverError as exc:
            raise CommandError(f"garbage collection of {name} failed: {exc}") from None
        verb = "Would remove" if dry_run else "Removed"
        self.stdout.write(self.style.SUCCESS(
            f"{verb} {report['deleted']} chunk(s), {report['bytes_freed']:,} bytes; "
            f"kept {report['referenced']} referenced and {report['kept_young']} young chunk(s); "
            f"{report['leases_open']} backup(s) in progress."))
