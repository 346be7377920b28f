"""Apply retention now: delete restore points the jobs' policies no longer keep."""

from django.core.management.base import BaseCommand, CommandError

from jobs import services
from jobs.choices import LogLevel
from jobs.driver.retention import apply_job_retention
from jobs.management.commands._common import lookup
from jobs.models import BackupJob
from vbrsite.times import stamp


class Command(BaseCommand):
    help = "Apply the retention of one job (or of every job) now."

    def add_arguments(self, parser):
        parser.add_argument("job", nargs="?", help="the job's name (default: every job)")

    def handle(self, *args, job, **options):
        jobs = [lookup(services.find_job, job)] if job else list(BackupJob.objects.all())
        total, kept = 0, []

        def say(message: str, level: str = LogLevel.INFO) -> None:
            if level != LogLevel.INFO:
                kept.append(message)
                self.stderr.write(message)

        for each in jobs:
            deleted = apply_job_retention(each, say=say)
            total += len(deleted)
            for point in deleted:
                self.stdout.write(f"{each.name}: deleted {point.manifest_id} of {point.vm_name} "
                                  f"({stamp(point.time)})")
        self.stdout.write(f"{total} restore point(s) deleted.")
        if kept:
            raise CommandError(f"{len(kept)} restore point(s) the policy lets go could not be deleted (above)")
