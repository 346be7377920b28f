"""What restore_vm and restore_disk share: submit, then print where to follow or wait."""

from __future__ import annotations

import sys

from django.core.management.base import CommandError

from jobs.choices import SessionState
from jobs.management.commands._common import QueueingCommand
from jobs.restore.points import RestoreError
from jobs.restore.requests import RestoreRequest, submit_restore
from jobs.restore.terminal import wait_for_session


class RestoreCommand(QueueingCommand):
    """A command that submits one restore session; ``--wait`` follows it to its end."""

    def add_wait_argument(self, parser) -> None:
        parser.add_argument("--wait", action="store_true",
                            help="show progress until the restore ends; exit 0 on success, "
                                 "2 on warning, 1 on failure")

    def submit(self, request: RestoreRequest, wait: bool) -> None:
        try:
            session = submit_restore(request)
        except RestoreError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"Restore session {session.pk} queued: {session.name}")
        if not wait:
            self.stdout.write(f"Follow it on the session page ({session.get_absolute_url()}) "
                              "or run the command again with --wait.")
            return
        state = wait_for_session(session, self.stdout)
        session.refresh_from_db()
        message = f"Restore session {session.pk} ended: {SessionState(state).label}. {session.summary}"
        if state == SessionState.SUCCESS:
            self.stdout.write(self.style.SUCCESS(message))
        elif state == SessionState.WARNING:
            self.stdout.write(self.style.WARNING(message))
            sys.exit(2)
        else:
            raise CommandError(message)
