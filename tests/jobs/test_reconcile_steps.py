"""Reconcile's last look before it cleans an engine object up (database only)."""

from unittest import mock

import pytest

from jobs.choices import ReconcileKind, SessionState
from jobs.models import ReconcileAction, Session
from jobs.reconcile import _act

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(("state", "acted"), [(SessionState.RUNNING, False), (SessionState.PENDING, False),
                                               (SessionState.FAILED, True)])
def test_an_object_is_cleaned_only_when_its_session_is_over_at_that_moment(state, acted):
    # A session that started after the pass read the live sessions owns what it just made.
    session = Session.objects.create(name="nightly", state=state)
    action = mock.Mock()
    _act(None, str(session.pk), "transfer-1", ReconcileKind.TRANSFER_CANCELLED, "cancelled transfer-1", action)
    assert action.called is acted
    assert ReconcileAction.objects.filter(object_id="transfer-1").exists() is acted
