"""Restore points: one restore point's page (the restore wizard is in jobs/views_restore.py)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render

from jobs.models import RestorePoint


def restore_point(request: HttpRequest, pk: int) -> HttpResponse:
    """A restore point: its VM, disks, figures and the session that made it."""
    point = get_object_or_404(RestorePoint.objects.select_related("repository", "job", "session", "vm"), pk=pk)
    return render(request, "jobs/restore_point.html", {"point": point, "title": str(point)})

