"""Long data mover runs (verify, garbage collection) as background jobs.

A job runs in a thread of the data mover process that accepted it; its state
lives in the repository (``jobs/<id>.json``) so that any data mover process can
answer a client that polls.
"""

import json
import os
import threading
import time
import traceback
import uuid

from repositories.store import ChunkStore, NotFound, StoreError, maintenance
from vbrsite.pids import pid_alive

STALE_AFTER = 600  # a running job silent this long, whose process is gone, was interrupted
KINDS = ("verify", "gc")


def _job_name(job_id: str) -> str:
    if not job_id.isalnum():
        raise NotFound(f"job {job_id} doesn't exist")
    return f"jobs/{job_id}.json"


def _write(store: ChunkStore, job: dict) -> None:
    job["updated"] = time.time()
    store.backend.write(_job_name(job["id"]), json.dumps(job).encode())


def read_job(store: ChunkStore, job_id: str) -> dict:
    """A job's state: running, done or failed, with progress and result."""
    job = json.loads(store.backend.read(_job_name(job_id)))
    if job["state"] == "running" and time.time() - job["updated"] > STALE_AFTER \
            and not pid_alive(job["pid"]):
        job.update(state="failed", error="the data mover process running this job stopped")
    return job


def running_job(store: ChunkStore, kind: str) -> dict | None:
    for info in store.backend.list("jobs/"):
        try:
            job = read_job(store, info.name[5:-5])
        except (NotFound, ValueError):
            continue
        if job["kind"] == kind and job["state"] == "running":
            return job
    return None


def start_job(store: ChunkStore, kind: str, options: dict) -> dict:
    """Start a verify or gc job (or return the one of that kind already running)."""
    if kind not in KINDS:
        raise StoreError(f"unknown job kind {kind!r}: use one of {', '.join(KINDS)}")
    existing = running_job(store, kind)
    if existing:
        return existing
    job = {"id": uuid.uuid4().hex, "kind": kind, "state": "running", "pid": os.getpid(),
           "started": time.time(), "options": options,
           "progress": {"done": 0, "total": 0, "message": "starting"},
           "result": None, "error": None}
    _write(store, job)
    threading.Thread(target=_run, args=(store, job), name=f"job-{kind}", daemon=True).start()
    return job


def _run(store: ChunkStore, job: dict) -> None:
    last = [0.0]

    def progress(done: int, total: int, message: str) -> None:
        job["progress"] = {"done": done, "total": total, "message": message}
        if time.monotonic() - last[0] > 1 or done == total:
            last[0] = time.monotonic()
            _write(store, job)

    try:
        if job["kind"] == "verify":
            result = maintenance.verify(store, progress).to_dict()
        else:
            options = job["options"]
            result = maintenance.collect_garbage(
                store, grace_seconds=float(options.get("grace_seconds", 6 * 3600)),
                dry_run=bool(options.get("dry_run", False)), progress=progress,
            ).to_dict()
        job.update(state="done", result=result)
    except Exception as exc:  # the client must learn why, whatever it was
        job.update(state="failed", error=f"{type(exc).__name__}: {exc}",
                   traceback=traceback.format_exc(limit=5))
    _write(store, job)
