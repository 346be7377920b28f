"""Polling the engine for a state, with a deadline. Internal to plugin.engine."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from plugin.errors import EngineTimeout, WaitAborted

T = TypeVar("T")

FIRST_POLL = 0.025
# Polls stay at FIRST_POLL this long before backing off.
QUICK_SECONDS = 0.5
MAX_POLL = 1.0

ShouldStop = Callable[[], bool] | None


def wait_for(fetch: Callable[[], T], done: Callable[[T], bool], *, timeout: float,
             what: str, describe: Callable[[T], str] = repr,
             should_stop: ShouldStop = None, deadline: float | None = None) -> T:
    """Call ``fetch`` until ``done(result)``; the result, or EngineTimeout after ``timeout`` s.

    ``deadline`` (a time.monotonic() value) ends the wait earlier: one deadline
    shared by the steps of an operation (the message still names ``timeout``).

    Polls every FIRST_POLL for the first QUICK_SECONDS (phases of small
    operations change within tens of milliseconds, and each VM of a session
    waits four times: backing off from the first poll made every wait see its
    change up to 80 ms late), then backs off by 1.5× to every second: a long wait
    costs the engine a GET a second and sees the change at most a second late.
    ``should_stop`` is asked between polls; when it says True, WaitAborted.
    """
    started = time.monotonic()
    deadline = min(started + timeout, deadline if deadline is not None else float("inf"))
    interval = FIRST_POLL
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
        time.sleep(min(interval, remaining))
        if time.monotonic() - started >= QUICK_SECONDS:
            interval = min(interval * 1.5, MAX_POLL)
