"""Records of the jobs app: backup jobs, their sessions, and the restore points they made."""

from jobs.models.jobs import BackupJob
from jobs.models.replaced_vms import ReplacedVm
from jobs.models.restore_points import RestorePoint
from jobs.models.sessions import ReconcileAction, Session, SessionLog, TaskSession, VmLock

__all__ = ["BackupJob", "ReconcileAction", "ReplacedVm", "RestorePoint", "Session", "SessionLog",
           "TaskSession", "VmLock"]
