"""Waking whoever waits on a disk task the moment its row changes as they wait for.

The task rows stay the truth: the waiting side still reads them. Where the
runners use Redis (production, VBR_REDIS_URL), the side that writes the change
also pushes a note on the task's key for that topic, and the waiting side blocks
on the key instead of sleeping: it sees the change at once and reads the rows
less often meanwhile (fewer queries competing with the disks' own work).

- NEWS, for a session driver: the task ended, or its backup has read every
  block (the driver then finalizes the transfer).
- URL, for a backup task's runner: the driver wrote the transfer's URL.

Without Redis, or when it fails, both sides sleep between reads as before.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable

from django.conf import settings

log = logging.getLogger(__name__)

NOTE_SECONDS = 300  # a note nobody took (its driver had read the row already) goes away
NEWS = "news"  # for a task's driver: the task ended, or has read its disk
URL = "url"  # for a backup task's runner: its transfer's URL is on the row now

_clients: dict[str, object] = {}


def available() -> bool:
    """Whether task changes are announced (Redis is configured)."""
    return bool(settings.REDIS_URL)


def announce(task_id: int, topic: str = NEWS) -> None:
    """Announce that a task's row changed as its driver (NEWS: it ended, or its reads finished)
    or its runner (URL) waits for; a failure only costs the waiting side a poll."""
    client = _client()
    if client is None:
        return
    key = _key(task_id, topic)
    try:
        with client.pipeline() as pipe:
            pipe.lpush(key, 1).expire(key, NOTE_SECONDS).execute()
    except Exception as exc:  # noqa: BLE001 - the row is written: the driver polls it anyway
        log.debug("announcing disk task %s failed: %s", task_id, exc)


def wait_for_news(task_ids: Iterable[int], seconds: float, topic: str = NEWS) -> None:
    """Return when one of the tasks is announced on ``topic``, or after ``seconds``."""
    client, keys = _client(), [_key(task_id, topic) for task_id in task_ids]
    if client is None or not keys or seconds <= 0:
        time.sleep(max(seconds, 0))
        return
    try:
        client.blpop(keys, timeout=seconds)
    except Exception as exc:  # noqa: BLE001 - Redis away: sleep, the rows tell the rest
        log.debug("waiting for disk tasks on Redis failed: %s", exc)
        time.sleep(seconds)


def _key(task_id: int, topic: str) -> str:
    return f"vbr:disk-task:{task_id}:{topic}"


def _client():
    url = settings.REDIS_URL
    if not url:
        return None
    if url not in _clients:
        import redis

        _clients[url] = redis.Redis.from_url(url, socket_timeout=30, socket_connect_timeout=5)
    return _clients[url]
