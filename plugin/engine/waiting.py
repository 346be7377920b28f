"""Polling the engine for a state, with a deadline. Internal to plugin.engine."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from plugin.errors import EngineTimeout, WaitAborted

T = TypeVar("T")

FIRST_POLL = 0.005
# Then each poll waits this share of the time waited so far (at most MAX_POLL).
PACE = 0.2
MAX_POLL = 1.0

ShouldStop = Callable[[], bool] | None


def wait_for(fetch: Callable[[], T], done: Callable[[T], bool], *, timeout: float,
             what: str, describe: Callable[[T], str] = repr,
             should_stop: ShouldStop = None, deadline: float | None = None) -> T:
    """Call ``fetch`` until ``done(result)``; the result, or EngineTimeout after ``timeout`` s.

    ``deadline`` (a time.monotonic() value) ends the wait earlier: one deadline
    shared by the steps of an operation (the message still names ``timeout``).

    The pause between polls grows with the time waited: FIRST_POLL at first,
    then PACE of the wait so far, up to MAX_POLL. A change is seen at most a
    fifth of its wait late, whatever the engine's pace: a phase that changes
    within 60 ms (a quick engine; each VM of a session waits four times) is
    seen within about 10 ms, where a fixed 25 ms poll saw it up to 25 ms late.
    A wait of 3 s (a real engine's phase change) costs the engine about 30
    GETs, as many as that fixed poll did; a long wait costs one a second.
    ``should_stop`` is asked between polls; when it says True, WaitAborted.
    """
    started = time.monotonic()
    deadline = min(started + timeout, deadline if deadline is not None else float("inf"))
    while True:
        result = fetch()
        if done(result):
            return result
        if should_stop is not None and should_stop():
            raise WaitAborted(f"Stopped waiting for {what}: the work was cancelled.")
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise EngineTimeout(f"Gave up waiting for {what} after {timeout:g} s "
                                f"(last seen: {describe(result)}).")
        interval = min(MAX_POLL, max(FIRST_POLL, PACE * (time.monotonic() - started)))
        time.sleep(min(interval, remaining))
