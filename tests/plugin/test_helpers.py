"""The facade's pure helpers: description tags, checkpoint order, waiting with a deadline."""

from datetime import UTC, datetime

import pytest

from plugin import engine as ovirt
from plugin.engine.backups import _chain_order
from plugin.engine.waiting import wait_for
from plugin.errors import EngineError, EngineTimeout, WaitAborted


def test_description_tags_round_trip_and_ignore_foreign_descriptions():
    tag = ovirt.description_tag(42, "disk sda")
    assert tag.startswith(ovirt.DESCRIPTION_PREFIX)
    assert ovirt.session_of(tag) == "42"
    assert ovirt.session_of("nightly snapshot by the admin") is None
    assert ovirt.session_of(None) is None


def test_checkpoints_come_root_first_whatever_the_engine_order():
    t = [datetime(2026, 1, d, tzinfo=UTC) for d in (1, 2, 3)]
    c1 = ovirt.CheckpointInfo(id="c1", creation_date=t[0])
    c2 = ovirt.CheckpointInfo(id="c2", parent_id="c1", creation_date=t[1])
    c3 = ovirt.CheckpointInfo(id="c3", parent_id="c2", creation_date=t[2])
    assert [c.id for c in _chain_order([c3, c1, c2])] == ["c1", "c2", "c3"]
    # After the root is deleted, the next one's parent is unknown: it becomes the root.
    assert [c.id for c in _chain_order([c3, c2])] == ["c2", "c3"]


def test_waiting_returns_the_first_result_that_is_done():
    answers = iter(["initializing", "starting", "ready"])
    assert wait_for(lambda: next(answers), lambda p: p == "ready", timeout=10, what="x") == "ready"


def test_waiting_gives_up_at_the_deadline_saying_what_it_last_saw():
    with pytest.raises(EngineTimeout, match="last seen: 'locked'"):
        wait_for(lambda: "locked", lambda s: s == "ok", timeout=0.3, what="disk to be ready")


def test_waiting_stops_when_the_caller_cancels():
    with pytest.raises(WaitAborted):
        wait_for(lambda: "locked", lambda s: False, timeout=10, what="x", should_stop=lambda: True)


def test_credentials_must_be_https_and_pem_and_hide_the_password():
    creds = ovirt.ManagerCredentials("http://engine/ovirt-engine/api", "admin@internal", "s3cret")
    with pytest.raises(EngineError, match="HTTPS"):
        creds.validate()
    with pytest.raises(EngineError, match="PEM"):
        ovirt.ManagerCredentials("https://e/ovirt-engine/api", "a", "p", ca_pem="garbage").validate()
    assert "s3cret" not in repr(creds)


def test_waiting_polls_quickly_at_first_then_in_step_with_the_time_waited(monkeypatch):
    from plugin.engine import waiting

    class Clock:
        now, polls = 0.0, []

        def monotonic(self):
            return self.now

        def sleep(self, seconds):
            self.polls.append((round(self.now, 6), round(seconds, 6)))
            self.now += seconds

    clock = Clock()
    monkeypatch.setattr(waiting, "time", clock)
    with pytest.raises(EngineTimeout):
        wait_for(lambda: "locked", lambda s: False, timeout=30, what="x")
    pauses = [pause for _, pause in clock.polls]
    # A quick engine's change (tens of milliseconds) is seen within a few milliseconds ...
    assert pauses[0] == waiting.FIRST_POLL and sum(1 for at, _ in clock.polls if at < 0.1) >= 10
    # ... any change at most a fifth of the time waited late ...
    assert all(pause <= max(waiting.FIRST_POLL, waiting.PACE * at) + 1e-6 for at, pause in clock.polls[:-1])
    assert pauses[:-1] == sorted(pauses[:-1]) and max(pauses) == waiting.MAX_POLL
    # ... and a real engine's few seconds cost it about 30 GETs, a long wait one a second.
    assert 25 <= sum(1 for at, _ in clock.polls if at < 3.0) <= 35
    assert sum(1 for at, _ in clock.polls if 20.0 <= at < 30.0) == 10
