"""A driver waiting on its disk tasks wakes the moment a runner announces one ended (real Redis)."""

import threading
import time

import pytest

from workers import wakeups

REDIS = "redis://127.0.0.1:6379/14"


@pytest.fixture
def redis_url(settings):
    import redis

    client = redis.Redis.from_url(REDIS)
    try:
        client.ping()
    except redis.ConnectionError:
        pytest.skip("no Redis on 127.0.0.1:6379")
    client.flushdb()
    settings.REDIS_URL = REDIS
    yield REDIS
    client.flushdb()


def test_a_waiting_driver_wakes_when_a_task_is_announced_ended(redis_url):
    assert wakeups.available()
    announcer = threading.Timer(0.2, wakeups.announce, args=(41,))
    started = time.monotonic()
    announcer.start()
    wakeups.wait_for_news([40, 41], 20.0)
    assert time.monotonic() - started < 10.0  # woken, not timed out


def test_an_end_announced_before_the_wait_is_not_missed(redis_url):
    wakeups.announce(7)
    started = time.monotonic()
    wakeups.wait_for_news([7], 20.0)
    assert time.monotonic() - started < 10.0


def test_without_redis_the_wait_is_a_plain_sleep(settings):
    settings.REDIS_URL = ""
    assert not wakeups.available()
    wakeups.announce(7)  # nothing to announce to: no error
    started = time.monotonic()
    wakeups.wait_for_news([7], 0.05)
    assert time.monotonic() - started >= 0.05


def test_a_note_for_the_runner_does_not_wake_the_driver_nor_the_other_way(redis_url):
    wakeups.announce(9, topic=wakeups.URL)  # the transfer's URL, for the runner
    started = time.monotonic()
    wakeups.wait_for_news([9], 0.3)  # the driver waits for the task's end: not woken by it
    assert time.monotonic() - started >= 0.3
    wakeups.wait_for_news([9], 20.0, topic=wakeups.URL)  # the runner takes its note at once
    assert time.monotonic() - started < 10.0
