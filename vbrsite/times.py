"""Times as administrators read them: in the server's time zone (VBR_TIME_ZONE), with the offset.

Pages show local times; text stored for later reading (session names and log lines, reconcile
and worker messages) and what commands print must match them, and carry the offset so no one
takes them for UTC or their own zone. Machine-read output (JSON, manifest ids) keeps ISO 8601.
"""

from __future__ import annotations

from datetime import datetime

from django.utils import timezone


def clock(when: datetime) -> str:
    """``10:42:07+02:00``: the time of day the pages show, with its offset."""
    return timezone.localtime(when).isoformat(timespec="seconds").partition("T")[2]


def stamp(when: datetime) -> str:
    """``2025-03-30 10:42:07+02:00``: a date and time as ``clock`` gives the time."""
    return timezone.localtime(when).isoformat(sep=" ", timespec="seconds")
