"""Sessions: the history with filters, a session's page, its live progress fragment, cancel."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST
from django_htmx.http import HttpResponseStopPolling

from jobs.forms import SessionFilterForm
from jobs.models import Session
from jobs.views.access import can_cancel
from vbrsite.lists import Listing

SORTS = {"created": "created", "name": "name", "state": "state", "kind": "kind", "started": "started",
         "read": "bytes_read", "stored": "bytes_stored"}
FILTERS = {"state": "state", "kind": "kind", "job": "job", "since": "created__date__gte",
           "q": ("name__icontains", "tasks__vm_name__icontains")}


def sessions(request: HttpRequest) -> HttpResponse:
    """Every session, newest first, filtered by state, kind, job, date and text; sortable, paginated."""
    listing = Listing(request, Session.objects.select_related("job"), sorts=SORTS, default_sort="-created",
                      form=SessionFilterForm(request.GET or None), filters=FILTERS)
    return render(request, "jobs/sessions.html", {"listing": listing, "form": listing.form,
                                                  "title": "Sessions"})


LOG_LINES_SHOWN = 300


def _session_context(request: HttpRequest, session: Session) -> dict:
    # The fragment is redrawn every 2 s: a long session shows its latest lines only.
    total = session.log_lines.count()
    lines = reversed(list(session.log_lines.order_by("-pk")[:LOG_LINES_SHOWN]))
    return {"session": session, "tasks": session.tasks.all(), "log_lines": list(lines),
            "earlier_lines": max(0, total - LOG_LINES_SHOWN), "can_run": can_cancel(request.user, session)}


def session_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """A session with progress per VM and disk, rates and its log."""
    session = get_object_or_404(Session.objects.select_related("job"), pk=pk)
    context = _session_context(request, session) | {"title": f"Session {session.pk}"}
    return render(request, "jobs/session_detail.html", context)


def session_progress(request: HttpRequest, pk: int) -> HttpResponse:
    """The live part of the session page; polled every 2 s, 286 once the session has ended."""
    session = get_object_or_404(Session.objects.select_related("job"), pk=pk)
    response = render(request, "jobs/session_detail_progress.html", _session_context(request, session))
    if session.is_terminal:
        return HttpResponseStopPolling(response.content)
    return response


@require_POST
def session_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    """Ask the session to stop; it cleans up the engine and ends as cancelled."""
    session = get_object_or_404(Session, pk=pk)
    if not can_cancel(request.user, session):
        raise PermissionDenied("Only administrators and operators may stop backup sessions; "
                               "restore operators may stop restore sessions.")
    if session.request_cancel():
        messages.success(request, f"Cancelling session {session.pk}: it stops within seconds.")
    else:
        messages.info(request, f"Session {session.pk} has ended already.")
    if request.htmx:
        return session_progress(request, pk)
    return redirect(session.get_absolute_url())
