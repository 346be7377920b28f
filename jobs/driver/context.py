"""What the threads of one running session share: the session, the cancel event, the outcome types."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from django.conf import settings

from jobs.models import Session


class Cancelled(Exception):
    """The session was cancelled: stop this VM, record no restore point."""


class Skipped(Exception):
    """The VM can't be backed up now for a reason that isn't a failure (it is busy)."""


class VmFailed(Exception):
    """The VM's backup failed; the message says why and what to do."""


@dataclass
class SessionRun:
    """One session being driven: the record and the event every wait polls to stop early."""

    session: Session
    cancelled: threading.Event = field(default_factory=threading.Event)

    def should_stop(self) -> bool:
        """For plugin waits: True once a cancel was requested."""
        return self.cancelled.is_set()

    def check_cancelled(self) -> None:
        """Raise Cancelled between steps once a cancel was requested."""
        if self.cancelled.is_set():
            raise Cancelled("the session was cancelled")

    @property
    def engine_timeout(self) -> float:
        return float(settings.VBR_ENGINE_TIMEOUT)

    @property
    def wait_timeout(self) -> float:
        """How long to wait for a backup, snapshot or transfer to change phase."""
        return float(settings.VBR_ENGINE_WAIT_TIMEOUT)
