"""One restore session being driven: its records, its engine connection, and what it created."""

from __future__ import annotations

import logging
import threading
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field

from django.conf import settings
from django.db import close_old_connections, connection
from django.utils import timezone

from jobs.choices import LogLevel
from jobs.models import RestorePoint, Session, TaskSession
from jobs.restore.requests import RestoreRequest

BEAT_SECONDS = 2.0
PULSE_SECONDS = 10.0
log = logging.getLogger(__name__)


class Cancelled(Exception):
    """The restore was cancelled: remove what it created."""


@dataclass
class Created:
    """What the session created in the engine, removed again when it fails or is cancelled."""

    disks: list[str] = field(default_factory=list)
    transfers: list[str] = field(default_factory=list)
    vms: list[str] = field(default_factory=list)


@dataclass
class RestoreRun:
    """The state of one running restore, shared by its steps."""

    session: Session
    request: RestoreRequest
    point: RestorePoint
    manager: object  # inventory.models.Manager
    engine: object = None  # plugin.engine.Engine
    manifest: object = None  # repositories.store.Manifest
    task: TaskSession | None = None
    created: Created = field(default_factory=Created)
    # Once the original VM is removed, a failure must keep what was restored:
    # it is then the only copy of the VM in the engine.
    past_point_of_no_return: bool = False
    _last_beat: float = 0.0

    @property
    def tag(self) -> str:
        """The description every object this session creates carries."""
        from plugin import engine as ovirt

        return ovirt.description_tag(self.session.pk, "restore")

    @property
    def wait_timeout(self) -> float:
        return float(getattr(settings, "VBR_ENGINE_WAIT_TIMEOUT", 600))

    def log(self, message: str, level: str = LogLevel.INFO) -> None:
        self.session.log(message, level)

    def should_stop(self) -> bool:
        """For engine waits: keep the heartbeat going; True once a cancel was requested."""
        now = time.monotonic()
        if now - self._last_beat >= BEAT_SECONDS:
            self._last_beat = now
            return self.session.beat()
        return self.session.cancel_requested

    def remember(self) -> None:
        """Write what the session created so far onto its record.

        If the driver dies, reconcile (``abandoned.clean_abandoned``) removes
        exactly these objects; a restore that succeeded keeps them.
        """
        created = {**asdict(self.created), "kept": self.past_point_of_no_return}
        self.session.options = {**self.session.options, "created": created}
        Session.objects.filter(pk=self.session.pk).update(options=self.session.options)

    def check_cancelled(self) -> None:
        """Between steps: raise Cancelled once a cancel was requested."""
        self._last_beat = 0.0
        if self.should_stop():
            raise Cancelled("the restore was cancelled")


@contextmanager
def pulse(session: Session):
    """Beat for the session from a thread while the block runs.

    The steps beat as they poll; this covers single engine calls and the
    cleanup's waits, so reconcile never takes a slow step for a dead driver.
    """
    stop = threading.Event()

    def beat() -> None:
        try:
            while not stop.wait(PULSE_SECONDS):
                try:
                    Session.objects.filter(pk=session.pk).update(heartbeat=timezone.now())
                except Exception:  # a database hiccup must not end the pulse for good
                    log.exception("heartbeat of restore session %s failed", session.pk)
                    close_old_connections()
        finally:
            connection.close()

    thread = threading.Thread(target=beat, name=f"restore-{session.pk}-pulse", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(PULSE_SECONDS)
