"""Run the qemu tools and manage the long-lived processes the data plane starts."""

import os
import select
import signal
import subprocess
import time
from pathlib import Path

from .errors import DataPlaneError


def run(args: list[str], what: str, timeout: float = 600.0) -> str:
    """Run a short-lived tool; return its stdout or raise DataPlaneError with its stderr."""
    try:
        done = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    except FileNotFoundError as e:
        raise DataPlaneError(f"{what}: {args[0]} is not installed (apt-get install qemu-utils)") from e
    except subprocess.TimeoutExpired as e:
        raise DataPlaneError(f"{what}: {args[0]} did not finish within {timeout:.0f} s") from e
    if done.returncode != 0:
        detail = (done.stderr or done.stdout).strip()
        raise DataPlaneError(f"{what}: {detail}")
    return done.stdout


def spawn(args: list[str], log_path: Path) -> subprocess.Popen:
    """Start a daemon in a session of its own, so stop() can signal it and all its children."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def stop(process: subprocess.Popen, timeout: float = 10.0) -> None:
    """SIGTERM the process group, wait, then SIGKILL whatever is left of it."""
    if process.poll() is None:
        _signal_group(process.pid, signal.SIGTERM)
        wait_exit(process, timeout)
    # The group may hold children even after its leader exited.
    _signal_group(process.pid, signal.SIGKILL)
    try:
        process.wait(5)
    except subprocess.TimeoutExpired as e:
        raise DataPlaneError(f"process {process.pid} ({process.args[0]}) does not die") from e


def wait_exit(process: subprocess.Popen, timeout: float) -> bool:
    """Wait up to timeout s for the process to exit; whether it did (it is reaped then).

    Wakes the moment it exits: Popen.wait(timeout) polls with sleeps growing to 50 ms,
    which made every stop of a qemu-nbd that exits in a few ms take 32 or 64 ms (each
    transfer the simulator closes, and with it every backup's finalize, paid that).
    """
    try:
        handle = os.pidfd_open(process.pid)
    except OSError:  # reaped already, or a kernel without pidfds
        try:
            process.wait(timeout)
            return True
        except subprocess.TimeoutExpired:
            return False
    try:
        select.select([handle], [], [], timeout)
    finally:
        os.close(handle)
    return process.poll() is not None


def stop_stale(pid_file: Path, marker: str) -> None:
    """Kill a process a crashed earlier run left behind, if its command line still matches.

    The marker (a socket path unique to this state directory) keeps us from touching a
    process that merely reused the pid.
    """
    try:
        pid = int(pid_file.read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except (OSError, ValueError):
        pid_file.unlink(missing_ok=True)
        return
    if marker in cmdline:
        _signal_group(pid, signal.SIGKILL)
        _wait_gone(pid)
    pid_file.unlink(missing_ok=True)


def alive(pid: int) -> bool:
    """True while /proc shows the pid and it is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _wait_gone(pid: int, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.02)


def _signal_group(pid: int, signo: int) -> None:
    try:
        os.killpg(pid, signo)
    except (ProcessLookupError, PermissionError):
        try:
            os.kill(pid, signo)
        except (ProcessLookupError, PermissionError):
            pass
