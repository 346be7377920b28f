"""The dashboard: whether everything is protected, at a glance."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from vbrsite import dashboard as figures

# How often the running-sessions block refreshes itself: fast while something
# runs, slowly while nothing does (a scheduled session may start any time).
POLL_RUNNING = "every 2s"
POLL_IDLE = "every 10s"


def _running_context() -> dict:
    running = figures.section("Running sessions", figures.running_sessions)
    busy = running.available and bool(running.data.get("sessions"))
    return {"running": running, "poll": POLL_RUNNING if busy else POLL_IDLE}


def dashboard(request: HttpRequest) -> HttpResponse:
    """Protection, the last day's sessions, running sessions, repositories, workers, reconcile, charts."""
    context = {"sections": figures.dashboard_sections(), "title": "Dashboard"}
    context.update(_running_context())
    return render(request, "vbrsite/dashboard.html", context)


def dashboard_repositories(request: HttpRequest) -> HttpResponse:
    """The repositories block with figures read from each data mover now (loaded after the page)."""
    section = figures.section("Repositories", lambda: figures.repositories(refresh=True))
    return render(request, "vbrsite/dashboard_repositories.html", {"s": section})


def dashboard_running(request: HttpRequest) -> HttpResponse:
    """The running sessions block alone, polled by the dashboard."""
    return render(request, "vbrsite/dashboard_running.html", _running_context())
