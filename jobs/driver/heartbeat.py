"""The session's pulse: figures summed from its VMs, the heartbeat, and the cancel flag.

One thread per running session writes the session row about once a second:
progress, bytes and rate summed from its TaskSession rows, and the heartbeat
that tells reconcile the driver is alive. It reads the cancel flag on the same
round trip and sets the event every wait of the session polls.
"""

from __future__ import annotations

import logging
import threading

from django.db import close_old_connections, connection

from jobs.choices import TERMINAL_STATES
from jobs.driver.context import SessionRun
from jobs.models import TaskSession

log = logging.getLogger(__name__)

BEAT_SECONDS = 1.0


def session_figures(session_id: int) -> dict:
    """Progress, bytes and rate of a session from its VMs' rows."""
    rows = list(TaskSession.objects.filter(session_id=session_id).values(
        "state", "progress", "bytes_total", "bytes_read", "bytes_sent", "bytes_stored", "rate"))
    if not rows:
        return {}
    return {
        "progress": round(min(_weighted_progress(rows), 100.0), 1),
        "bytes_total": sum(r["bytes_total"] for r in rows),
        "bytes_read": sum(r["bytes_read"] for r in rows),
        "bytes_sent": sum(r["bytes_sent"] for r in rows),
        "bytes_stored": sum(r["bytes_stored"] for r in rows),
        "rate": sum(r["rate"] for r in rows if r["state"] not in TERMINAL_STATES),
    }


def _weighted_progress(rows: list[dict]) -> float:
    """The VMs' progress weighted by the bytes each has to move, so that a small
    VM done early doesn't carry the bar as far as a large one still under way.

    A VM not started yet has no byte count: it weighs as the average VM that has one
    (all VMs weigh the same while none has). A VM that ended counts as done.
    """
    known = [r["bytes_total"] for r in rows if r["bytes_total"] > 0]
    average = sum(known) / len(known) if known else 1.0
    weights = [r["bytes_total"] if r["bytes_total"] > 0 else average for r in rows]
    done = sum(w * (100.0 if r["state"] in TERMINAL_STATES else r["progress"]) for w, r in zip(weights, rows, strict=True))
    return done / sum(weights)


class Heartbeat(threading.Thread):
    """Beats for one session until stopped."""

    def __init__(self, run: SessionRun):
        super().__init__(name=f"session-{run.session.pk}-heartbeat", daemon=True)
        self.session_run = run
        self._stop_event = threading.Event()

    def beat(self) -> None:
        """One round: write the figures and heartbeat, read the cancel flag."""
        if self.session_run.session.beat(**session_figures(self.session_run.session.pk)):
            self.session_run.cancelled.set()

    def run(self) -> None:
        try:
            while not self._stop_event.wait(BEAT_SECONDS):
                try:
                    self.beat()
                except Exception:  # a database hiccup must not stop the beat for good
                    log.exception("heartbeat of session %s failed", self.session_run.session.pk)
                    close_old_connections()
        finally:
            connection.close()

    def stop(self) -> None:
        self._stop_event.set()
        self.join(10)
