"""Helpers shared by the jobs commands: lookups as CommandErrors, a quiet queue, following a session."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

from django.core.management.base import BaseCommand, CommandError

from jobs import services
from jobs.choices import SessionState
from jobs.models import Session
from vbrsite.times import clock

QUEUED_HINT_SECONDS = 15
EXIT_CODES = {SessionState.SUCCESS: 0, SessionState.WARNING: 2}


def lookup(function, *args):
    """Call a services.find_* function; its LookupError_ becomes a CommandError."""
    try:
        return function(*args)
    except services.LookupError_ as exc:
        raise CommandError(str(exc)) from None


@contextmanager
def quiet_task_queue() -> Iterator[None]:
    """Keep django-q2's INFO lines ("Enqueued [control] ...") off a command's stderr.

    Scripts take anything on stderr for an error. Its warnings and errors still show, and
    so does everything at VBR_LOG_LEVEL=DEBUG; the runners are other processes and keep
    their logs.
    """
    logger = logging.getLogger("django-q")  # the name django_q.conf logs under
    level = logger.level
    if logging.DEBUG < logger.getEffectiveLevel() < logging.WARNING:
        logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


class QueueingCommand(BaseCommand):
    """A command that sends work to a runner (a session): nothing on stderr when all goes well."""

    def execute(self, *args, **options):
        with quiet_task_queue():
            return super().execute(*args, **options)


def follow_session(session: Session, stdout, poll: float = 1.0) -> int:
    """Show the session's progress until it ends; the exit code (0 success, 2 warning, 1 otherwise).

    On a terminal a progress bar is redrawn in place; otherwise a line is
    printed whenever the percentage moves, so logs stay readable.
    """
    tty = sys.stdout.isatty()
    shown, last_line = -1.0, 0
    queued_since, hinted = time.monotonic(), False
    while True:
        session.refresh_from_db()
        lines = list(session.log_lines.filter(pk__gt=last_line).order_by("pk"))
        for line in lines:
            if tty:
                stdout.write("\r\033[K", ending="")
            stdout.write(f"{clock(line.time)} {line.level:7} {line.message}")
            last_line = line.pk
        if session.progress != shown or lines:
            shown = session.progress
            _progress(session, stdout, tty)
        if session.state == SessionState.PENDING and not hinted \
                and time.monotonic() - queued_since > QUEUED_HINT_SECONDS:
            stdout.write("The session is still queued: is the control runner running? "
                         "(`manage.py qcluster`, the Procfile's `control` line)")
            hinted = True
        if session.is_terminal:
            if tty:
                stdout.write("")
            stdout.write(f"Session {session.pk}: {session.get_state_display()}. {session.summary}")
            return EXIT_CODES.get(session.state, 1)
        time.sleep(poll)


def _progress(session: Session, stdout, tty: bool) -> None:
    width = 30
    filled = int(width * session.progress / 100)
    rate = f"{session.rate / 1048576:.1f} MiB/s" if session.rate else ""
    text = f"[{'#' * filled}{'.' * (width - filled)}] {session.progress:5.1f}% {rate}"
    if tty:
        stdout.write(f"\r\033[K{text}", ending="")
        stdout.flush()
    else:
        stdout.write(text)
