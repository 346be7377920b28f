"""The session driver: what the control runner does for one session.

``drive(session_id)`` claims the session and runs it: for a backup, each VM
in parallel up to the job's limit (``backup_session``), each VM through the
backup API with checkpoints or the snapshot flow (``vm_backup``), each disk
moved by a worker (``disks``), the engine left clean whatever happens
(``cleanup``), the restore point written last (``restore_points``), retention
applied (``retention``). The django-q2 task in jobs.tasks only calls this.
"""

from jobs.driver.backup_session import drive

__all__ = ["drive"]
