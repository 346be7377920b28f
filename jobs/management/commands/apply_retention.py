"""Apply retention now: delete restore points the jobs' policies no longer keep."""

from django.core.management.base import BaseCommand

from jobs import services
from jobs.driver.retention import apply_job_retention
from jobs.management.commands._common import lookup
from jobs.models import BackupJob


class Command(BaseCommand):
    help = "Apply the retention of one job (or of every job) now."

    def add_arguments(self, parser):
        parser.add_argument("job", nargs="?", help="the job's name (default: every job)")

    def handle(self, *args, job, **options):
        jobs = [lookup(services.find_job, job)] if job else list(BackupJob.objects.all())
        total = 0
        for each in jobs:
            deleted = apply_job_retention(each)
            total += len(deleted)
            for point in deleted:
                self.stdout.write(f"{each.name}: deleted {point.manifest_id} of {point.vm_name} "
                                  f"({point.time:%Y-%m-%d %H:%M})")
        self.stdout.write(f"{total} restore point(s) deleted.")
