"""Back up one VM outside any job."""

from jobs import services
from jobs.management.commands._common import QueueingCommand, follow_session, lookup


class Command(QueueingCommand):
    help = "Back up one VM to a repository now (--wait: show progress; exit 0 success, 2 warning, 1 failed)."

    def add_arguments(self, parser):
        parser.add_argument("vm", help="the VM's name or engine id")
        parser.add_argument("--repository", required=True)
        parser.add_argument("--wait", action="store_true")
        parser.add_argument("--full", action="store_true")

    def handle(self, *args, vm, repository, wait, full, **options):
        session = services.backup_vms([lookup(services.find_vm, vm)],
                                      lookup(services.find_repository, repository), full=full)
        self.stdout.write(f"Session {session.pk} queued.")
        if wait:
            code = follow_session(session, self.stdout)
            if code:
                raise SystemExit(code)
