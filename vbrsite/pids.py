"""Whether a process id still names a running process (plain Python, no Django)."""

import os


def pid_alive(pid: int) -> bool:
    """True while ``pid`` runs; False once it ended, zombies included.

    A zombie still answers signal 0, but it has ended: its parent is gone or has
    not reaped it yet (some container init processes never do).
    """
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            state = stat.read().rsplit(b")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True  # no /proc here: trust the signal
    return state != b"Z"
