"""Engine connections kept between sessions: reused after good work, dropped after failures or idleness."""

import pytest

from plugin.engine import ManagerCredentials, pool

CREDENTIALS = ManagerCredentials("https://engine.example/ovirt-engine/api", "admin@internal", "secret")


class FakeEngine:
    def __init__(self):
        self.closed = False

    def close(self):
        self.closed = True


@pytest.fixture
def made(monkeypatch):
    """The connections the pool opened (it opens them with plugin.engine.connection.connect)."""
    engines = []

    def connect(credentials, timeout):
        engines.append(FakeEngine())
        return engines[-1]

    monkeypatch.setattr(pool, "connect", connect)
    pool.close_idle()
    yield engines
    pool.close_idle()


def test_a_connection_given_back_after_good_work_is_used_again(made):
    with pool.pooled_connection(CREDENTIALS, timeout=30) as first:
        pass
    with pool.pooled_connection(CREDENTIALS, timeout=30) as second:
        assert second is first and not first.closed
    with pool.pooled_connection(CREDENTIALS, timeout=60) as other_timeout:
        assert other_timeout is not first
    changed = ManagerCredentials(CREDENTIALS.url, CREDENTIALS.username, "new secret")
    with pool.pooled_connection(changed, timeout=30) as other_password:
        assert other_password is not first
    assert len(made) == 3


def test_a_connection_whose_work_failed_is_closed_not_kept(made):
    with pytest.raises(RuntimeError), pool.pooled_connection(CREDENTIALS, timeout=30) as failed:
        raise RuntimeError("the engine said no")
    assert failed.closed
    with pool.pooled_connection(CREDENTIALS, timeout=30) as fresh:
        assert fresh is not failed


def test_a_connection_idle_too_long_is_logged_out_and_replaced(made, monkeypatch):
    with pool.pooled_connection(CREDENTIALS, timeout=30) as old:
        pass
    later = pool._clock() + pool.IDLE_SECONDS + 1
    monkeypatch.setattr(pool, "_clock", lambda: later)
    with pool.pooled_connection(CREDENTIALS, timeout=30) as new:
        assert new is not old
    assert old.closed and not new.closed
