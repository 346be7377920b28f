"""Run a backup job now."""

from jobs import services
from jobs.management.commands._common import QueueingCommand, follow_session, lookup


class Command(QueueingCommand):
    help = "Run a job now (--wait: show progress; exit 0 success, 2 warning, 1 failed)."

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument("--wait", action="store_true", help="follow the session until it ends")
        parser.add_argument("--full", action="store_true", help="read every disk in full")

    def handle(self, *args, name, wait, full, **options):
        job = lookup(services.find_job, name)
        session = services.run_job(job, full=full)
        self.stdout.write(f"Session {session.pk} queued for job {job.name}.")
        if not wait:
            return
        code = follow_session(session, self.stdout)
        if code:
            raise SystemExit(code)
