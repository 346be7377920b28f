"""Pages of the jobs app: jobs and the job wizard, sessions with live progress, restore points."""

from jobs.views.jobs import detail, index, job_delete, job_enable, job_run
from jobs.views.points import restore_point
from jobs.views.sessions import session_cancel, session_detail, session_progress, sessions
from jobs.views.wizard import wizard

__all__ = ["detail", "index", "job_delete", "job_enable", "job_run", "restore_point",
           "session_cancel", "session_detail", "session_progress", "sessions", "wizard"]
