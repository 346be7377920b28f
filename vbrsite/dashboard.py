"""What the dashboard shows, gathered from the other apps' records.

Each section is computed on its own: a section whose app or model isn't there
(an installation in the making, an app not migrated yet) says so plainly
instead of breaking the page. The queries are counts and short lists, so the
page stays fast with thousands of VMs.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from django.db import DatabaseError
from django.db.models import Count, Q
from django.urls import reverse
from django.utils import timezone

from vbrsite import charts

log = logging.getLogger(__name__)

UNPROTECTED_SHOWN = 8
RECONCILE_SHOWN = 8
CHART_DAYS = 14
DURATIONS_SHOWN = 30
RESULT_STATES = ("success", "warning", "failed", "cancelled")
REFRESH_TIMEOUT = 3  # seconds a data mover may take to report its figures
QUEUE_WAIT_SECONDS = 60  # a task queued this long with no runner taking it is reported


@dataclass
class Section:
    """One block of the dashboard: its figures, or why it can't show them."""

    available: bool = True
    missing: str = ""
    data: dict = field(default_factory=dict)


def section(what: str, build: Callable[[], dict]) -> Section:
    """Run ``build``; an absent app or model (or unmigrated table) gives a plain note instead."""
    try:
        return Section(data=build())
    except (ImportError, LookupError) as exc:
        log.info("dashboard: %s not available: %s", what, exc)
        return Section(False, f"{what} will show here once that part of the backup server is installed.")
    except DatabaseError as exc:
        log.warning("dashboard: %s could not be read: %s", what, exc)
        return Section(False, f"{what} can't be read from the database ({exc.__class__.__name__}): "
                              "run `manage.py migrate`.")


def protection() -> dict:
    """VMs in the inventory with and without a restore point in good state (worker VMs left out)."""
    from inventory.models import VM
    from jobs.protection import has_good_restore_point

    vms = VM.objects.filter(removed=False).exclude(engine_id__in=_worker_vm_ids())
    # Restore points taken before an in-place restore re-created a VM count for it too.
    good_point = has_good_restore_point()
    total = vms.count()
    protected = vms.filter(good_point).count()
    unprotected = (vms.exclude(good_point).select_related("cluster")
                   .order_by("name")[:UNPROTECTED_SHOWN])
    return {"total": total, "protected": protected, "unprotected_count": total - protected,
            "unprotected": list(unprotected),
            "percent": round(100 * protected / total) if total else 0}


def _worker_vm_ids() -> list[str]:
    """Engine ids of the worker VMs: the backup server's own, not VMs to protect."""
    try:
        from workers.models import Worker
    except ImportError:
        return []
    return list(Worker.objects.exclude(engine_vm_id="").values_list("engine_vm_id", flat=True))


def sessions_last_day(now=None) -> dict:
    """Sessions created in the last 24 hours, counted by state."""
    from jobs.models import Session

    since = (now or timezone.now()) - timedelta(hours=24)
    counts = dict(Session.objects.filter(created__gte=since).values_list("state")
                  .annotate(n=Count("pk")).values_list("state", "n"))
    results = [{"state": state, "count": counts.get(state, 0)} for state in RESULT_STATES]
    active = counts.get("running", 0) + counts.get("pending", 0)
    return {"results": results, "active": active, "total": sum(counts.values()),
            "since": timezone.localtime(since).date().isoformat()}


def running_sessions() -> dict:
    """Sessions queued or running now, oldest first, with their progress."""
    from jobs.models import Session

    sessions = list(Session.objects.filter(state__in=("pending", "running"))
                    .select_related("job").order_by("created")[:20])
    return {"sessions": sessions}


def repositories(refresh: bool = False) -> dict:
    """Each repository's capacity, use and data reduction as its data mover reports them.

    Without ``refresh``, the figures last read (the page loads fast); with it,
    each data mover is asked now (the dashboard does that in a fragment it
    loads right after the page).
    """
    from repositories.models import Repository

    rows = []
    point_counts = _restore_points_by_repository()
    for repository in Repository.objects.select_related("gateway").order_by("name"):
        error = _refresh_stats(repository) if refresh else ""
        stats = repository.stats or {}
        rows.append({"repository": repository, "percent": repository.usage_percent(),
                     "used": stats.get("used"), "capacity": stats.get("capacity"),
                     "dedup_ratio": stats.get("dedup_ratio"), "error": error,
                     "restore_points": point_counts.get(repository.pk, 0)})
    return {"rows": rows, "refreshed": refresh}


def _refresh_stats(repository) -> str:
    """Read the data mover's figures into the record; what went wrong, or ""."""
    from repositories.datamover.client import DataMoverError
    from repositories.services import refresh_stats

    try:
        refresh_stats(repository, timeout=REFRESH_TIMEOUT)
    except DataMoverError as exc:
        return str(exc)
    return ""


def _restore_points_by_repository() -> dict[int, int]:
    try:
        from jobs.models import RestorePoint
    except ImportError:
        return {}
    return dict(RestorePoint.objects.values_list("repository").annotate(n=Count("pk"))
                .values_list("repository", "n"))


def workers() -> dict:
    """Workers by state, each with its running disk tasks, and what the embedded worker runs."""
    from workers.models import DiskTask, Worker

    active = ("pending", "running")
    rows = list(Worker.objects.select_related("cluster").order_by("name")
                .annotate(tasks=Count("disk_tasks", filter=Q(disk_tasks__state__in=active))))
    counts: dict[str, int] = {}
    for worker in rows:
        counts[worker.get_state_display()] = counts.get(worker.get_state_display(), 0) + 1
    embedded = DiskTask.objects.filter(worker__isnull=True, state__in=active).count()
    return {"rows": rows, "counts": sorted(counts.items()), "embedded_tasks": embedded}


def reconcile(now=None) -> dict:
    """What reconcile cleaned up in the last 7 days: counts by kind and the latest actions."""
    from jobs.models import ReconcileAction

    since = (now or timezone.now()) - timedelta(days=7)
    recent = ReconcileAction.objects.filter(time__gte=since)
    labels = dict(ReconcileAction._meta.get_field("kind").choices)
    counts = [(labels.get(kind, kind), n) for kind, n in
              recent.values_list("kind").annotate(n=Count("pk")).values_list("kind", "n")]
    return {"counts": sorted(counts), "actions": list(recent.select_related("manager", "session")
                                                      .order_by("-time")[:RECONCILE_SHOWN])}


def history(now=None) -> dict:
    """Bytes stored per day (last CHART_DAYS days) and the durations of the latest sessions."""
    from jobs.models import Session

    now = now or timezone.now()
    first_day = timezone.localtime(now).date() - timedelta(days=CHART_DAYS - 1)
    ended = (Session.objects.filter(kind="backup", finished__isnull=False, started__isnull=False)
             .order_by("-finished"))
    per_day = {first_day + timedelta(days=n): 0 for n in range(CHART_DAYS)}
    since = now - timedelta(days=CHART_DAYS + 1)
    for finished, stored in ended.filter(finished__gte=since).values_list("finished", "bytes_stored"):
        day = timezone.localtime(finished).date()
        if day in per_day:
            per_day[day] += stored or 0
    latest = list(ended.values_list("pk", "name", "state", "started", "finished")[:DURATIONS_SHOWN])
    latest.reverse()
    return {"stored": charts.stored_per_day(per_day), "durations": charts.session_durations(latest)}


def attention() -> dict:
    """What an administrator should look at now: managers in error, lost workers, damaged points."""
    from inventory.models import Manager

    items = [{"text": f"Manager {m.name} can't be reached: {m.last_error or 'see its page'}",
              "url": reverse("inventory:managers")}
             for m in Manager.objects.filter(state="error").only("name", "last_error")[:5]]
    items += _waiting_queues() + _worker_problems() + _corrupted_points()
    return {"items": items}


def _waiting_queues(now=None) -> list[dict]:
    """Queues whose tasks wait with no runner taking them (django-q2's ORM broker only).

    The ORM broker stamps a task with the time it was queued and moves the
    stamp into the future when a runner takes it; a stamp long past means no
    runner serves that queue.
    """
    from django.conf import settings
    from django_q.models import OrmQ

    if "orm" not in settings.Q_CLUSTER:
        return []
    since = (now or timezone.now()) - timedelta(seconds=QUEUE_WAIT_SECONDS)
    waiting = OrmQ.objects.filter(lock__lt=since).values_list("key").annotate(n=Count("pk"))
    control = settings.Q_CLUSTER["name"]
    items = []
    for queue, count in waiting.values_list("key", "n"):
        start = "manage.py qcluster" if queue == control else f"Q_CLUSTER_NAME={queue} manage.py qcluster"
        items.append({"text": f"{count} task{'s' if count > 1 else ''} waited over a minute on queue "
                              f"{queue}: is its runner started? ({start})",
                      "url": reverse("workers:index")})
    return items


def _worker_problems() -> list[dict]:
    try:
        from workers.models import Worker
    except ImportError:
        return []
    return [{"text": f"Worker {w.name} is {w.get_state_display().lower()}"
                     + (f": {w.last_error}" if w.last_error else ""), "url": w.get_absolute_url()}
            for w in Worker.objects.filter(state__in=("failed", "unreachable"))[:5]]


def _corrupted_points() -> list[dict]:
    try:
        from jobs.models import RestorePoint
    except ImportError:
        return []
    count = RestorePoint.objects.filter(state="corrupted").count()
    if not count:
        return []
    return [{"text": f"{count} restore point{'s' if count > 1 else ''} failed verification",
             "url": reverse("repositories:index")}]


def dashboard_sections() -> dict[str, Section]:
    """Every section of the dashboard by name (running sessions come with their fragment)."""
    return {
        "attention": section("Problems", attention),
        "protection": section("Protection of VMs", protection),
        "last_day": section("Sessions", sessions_last_day),
        "repositories": section("Repositories", repositories),
        "workers": section("Workers", workers),
        "reconcile": section("Reconcile", reconcile),
        "history": section("History charts", history),
    }
