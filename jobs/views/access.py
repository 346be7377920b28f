"""Who may do what with jobs: Administrators change jobs; Administrators and Operators run them."""

from __future__ import annotations

import functools

from django.core.exceptions import PermissionDenied

from vbrsite.roles import ADMINISTRATOR, OPERATOR, RESTORE_OPERATOR, user_has_role


def can_edit(user) -> bool:
    return user_has_role(user, ADMINISTRATOR)


def can_run(user) -> bool:
    return user_has_role(user, ADMINISTRATOR, OPERATOR)


def can_cancel(user, session) -> bool:
    """Runners stop any session; a Restore operator stops restore sessions (they may start them)."""
    if can_run(user):
        return True
    return session.kind == "restore" and user_has_role(user, RESTORE_OPERATOR)


def require(check, message: str):
    """A view decorator: PermissionDenied (403) with ``message`` when ``check(user)`` is False."""

    def decorate(view):
        @functools.wraps(view)
        def wrapper(request, *args, **kwargs):
            if not check(request.user):
                raise PermissionDenied(message)
            return view(request, *args, **kwargs)

        return wrapper

    return decorate


editors_only = require(can_edit, "Only administrators may create or change backup jobs.")
runners_only = require(can_run, "Only administrators and operators may run or stop backup jobs.")
