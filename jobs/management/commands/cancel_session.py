"""Cancel a queued or running session."""

from django.core.management.base import BaseCommand, CommandError

from jobs.models import Session


class Command(BaseCommand):
    help = "Cancel a session: it stops within seconds and cleans up the engine."

    def add_arguments(self, parser):
        parser.add_argument("id", type=int)

    def handle(self, *args, id, **options):
        session = Session.objects.filter(pk=id).first()
        if session is None:
            raise CommandError(f"No session {id}: see the Sessions page for ids.")
        if not session.request_cancel():
            raise CommandError(f"Session {id} has ended already ({session.get_state_display()}).")
        self.stdout.write(f"Cancel requested for session {id} ({session.get_state_display()}).")
