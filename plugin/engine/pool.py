"""Engine connections a runner process keeps between sessions.

Logging in to an engine is an SSO round trip (on a loaded engine, a good part of
a second) and logging out another: a scheduled job backing up many VMs paid both
for every VM. A connection given back here after work that went well is handed
to the next piece of work for the same engine, user and timeout; one idle for
IDLE_SECONDS is logged out and dropped. The SDK logs in again by itself when a
kept token has expired. A connection whose work failed is closed, never kept:
its state is unknown.
"""

from __future__ import annotations

import atexit
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from plugin.engine.connection import DEFAULT_TIMEOUT, Engine, ManagerCredentials, connect

IDLE_SECONDS = 300.0
MAX_IDLE_PER_ENGINE = 4

_clock = time.monotonic
_lock = threading.Lock()
_idle: dict[tuple[ManagerCredentials, float], list[tuple[float, Engine]]] = {}


@contextmanager
def pooled_connection(credentials: ManagerCredentials, *,
                      timeout: float = DEFAULT_TIMEOUT) -> Iterator[Engine]:
    """An open connection to the engine, kept for the next caller if the work succeeds."""
    key = (credentials, float(timeout))
    engine = _take(key) or connect(credentials, timeout=timeout)
    try:
        yield engine
    except BaseException:
        engine.close()
        raise
    _give_back(key, engine)


def close_idle(older_than: float = 0.0) -> int:
    """Log out and drop the kept connections idle for more than ``older_than`` s; how many."""
    now, stale = _clock(), []
    with _lock:
        for key, kept in list(_idle.items()):
            fresh = [(since, engine) for since, engine in kept if now - since <= older_than]
            stale += [engine for since, engine in kept if now - since > older_than]
            if fresh:
                _idle[key] = fresh
            else:
                del _idle[key]
    for engine in stale:
        engine.close()
    return len(stale)


atexit.register(close_idle)  # log out (and remove the CA files) when the process ends normally


def _take(key) -> Engine | None:
    close_idle(IDLE_SECONDS)
    with _lock:
        kept = _idle.get(key)
        return kept.pop()[1] if kept else None


def _give_back(key, engine: Engine) -> None:
    with _lock:
        kept = _idle.setdefault(key, [])
        if len(kept) < MAX_IDLE_PER_ENGINE:
            kept.append((_clock(), engine))
            return
    engine.close()
