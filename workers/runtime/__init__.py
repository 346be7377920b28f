"""The disk movers a worker runner runs: plain Python over imageio and the store, no ORM.

``backup_disk`` reads a transfer into a repository and returns the disk index;
``restore_disk`` writes a restore point's disk into an upload transfer. Both
report to a Monitor (progress, cancellation) from the calling thread only, so
the Django task that calls them may write the database there.
"""

from workers.runtime.backup import BackupResult, backup_disk, disk_size
from workers.runtime.backup_plan import block_runs
from workers.runtime.common import Cancelled, Monitor, MoverError, NullMonitor
from workers.runtime.imageio import (
    ImageioClient,
    ImageioError,
    ImageioUnreachable,
    TicketGone,
)
from workers.runtime.restore import restore_disk, subtract_zero_extents, zero_runs

__all__ = [
    "BackupResult", "Cancelled", "ImageioClient", "ImageioError", "ImageioUnreachable",
    "Monitor", "MoverError", "NullMonitor", "TicketGone", "backup_disk", "block_runs",
    "disk_size", "restore_disk", "subtract_zero_extents", "zero_runs",
]
