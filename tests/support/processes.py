"""Start the project's processes for a test and stop them, leaving nothing behind."""

import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, timeout: float = 30.0, process: subprocess.Popen | None = None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode} before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"nothing listened on port {port} within {timeout} s")


def stop_process(process: subprocess.Popen, timeout: float = 15.0):
    """SIGTERM the leader (it stops its children in order), then SIGKILL what is left of the group."""
    if process.poll() is None and timeout > 0:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait(5)


@contextmanager
def running(args: list[str], env: dict | None = None, log_path: Path | None = None, cwd=ROOT,
            graceful: bool = True):
    """Run args in a process group of its own for the duration of the block.

    ``graceful=False`` kills the group at the end without asking: for runners,
    whose orderly stop takes a second and which a test's database flush follows anyway.
    """
    log = open(log_path, "ab") if log_path else subprocess.DEVNULL
    process = subprocess.Popen(
        args, cwd=cwd, env={**os.environ, **(env or {})}, stdout=log,
        stderr=subprocess.STDOUT, start_new_session=True,
    )
    try:
        yield process
    finally:
        stop_process(process, timeout=15.0 if graceful else 0.0)
        if log_path:
            log.close()


def manage_py(*args: str) -> list[str]:
    return [sys.executable, str(ROOT / "manage.py"), *args]
