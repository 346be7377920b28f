"""Engine connections kept between backups (the simulator's engine): reused after good work, closed
after failed work or too long idle."""

import pytest

from plugin import engine as ovirt
from plugin.engine import pool
from plugin.errors import EngineError


@pytest.fixture
def kept():
    pool.close_idle()
    yield
    pool.close_idle()


def _works(engine) -> bool:
    try:
        return bool(ovirt.api_info(engine).version)
    except EngineError:
        return False


def test_a_connection_given_back_after_good_work_is_used_again(credentials, kept):
    with pool.pooled_connection(credentials, timeout=30) as first:
        assert _works(first)
    with pool.pooled_connection(credentials, timeout=30) as second:
        assert second is first and _works(second)  # no new login
    with pool.pooled_connection(credentials, timeout=60) as other_timeout:
        assert other_timeout is not first
    other_user = ovirt.ManagerCredentials(credentials.url, credentials.username, "another password",
                                          credentials.ca_pem)
    with pytest.raises(EngineError), pool.pooled_connection(other_user, timeout=30):
        pass  # its own login (refused): never the kept connection of the right password


def test_a_connection_whose_work_failed_is_closed_not_kept(credentials, kept):
    with pytest.raises(RuntimeError), pool.pooled_connection(credentials, timeout=30) as failed:
        assert _works(failed)
        raise RuntimeError("the engine said no")
    assert not _works(failed)  # logged out
    with pool.pooled_connection(credentials, timeout=30) as fresh:
        assert fresh is not failed and _works(fresh)


def test_a_connection_idle_too_long_is_logged_out_and_replaced(credentials, kept, monkeypatch):
    with pool.pooled_connection(credentials, timeout=30) as old:
        pass
    later = pool._clock() + pool.IDLE_SECONDS + 1
    monkeypatch.setattr(pool, "_clock", lambda: later)
    with pool.pooled_connection(credentials, timeout=30) as new:
        assert new is not old and _works(new)
    assert not _works(old)
